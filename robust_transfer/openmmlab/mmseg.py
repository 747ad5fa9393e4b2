"""The mmsegmentation plugin: import it through a config's ``custom_imports``::

    custom_imports = dict(imports=['robust_transfer.openmmlab.mmseg'], allow_failed_imports=False)

On import it only registers and patches:

* our seeded :class:`~robust_transfer.openmmlab.transforms.Corrupt` (the one shared with mmdet)
  in mmseg's ``TRANSFORMS`` registry under the name ``Corrupt`` (mmseg has no transform of that
  name; its transforms module is imported first all the same);
* the compatibility shims (:func:`robust_transfer.openmmlab.compat.apply_shims`).

The segmentation task adapter is :data:`robust_transfer.openmmlab.segmentation.SEGMENTATION`.
"""
import mmseg.datasets.transforms  # noqa: F401  (mmseg's transforms register first)
from mmseg.registry import TRANSFORMS

from .compat import apply_shims
from .transforms import Corrupt, register_corrupt

__all__ = ["Corrupt"]

register_corrupt(TRANSFORMS)
apply_shims()
