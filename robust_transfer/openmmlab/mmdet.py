"""The mmdet plugin: import it through a config's ``custom_imports``::

    custom_imports = dict(imports=['robust_transfer.openmmlab.mmdet'], allow_failed_imports=False)

On import it only registers and patches:

* our seeded :class:`~robust_transfer.openmmlab.transforms.Corrupt` in mmdet's ``TRANSFORMS``
  registry under the name ``Corrupt``, replacing mmdet's own (``force=True``; mmdet's transforms
  module is imported first so that its own registration has happened), so configs written for
  mmdet's transform keep working;
* the compatibility shims (:func:`robust_transfer.openmmlab.compat.apply_shims`).

The detection task adapter is :data:`robust_transfer.openmmlab.detection.DETECTION`.
"""
import mmdet.datasets.transforms  # noqa: F401  (mmdet's own Corrupt registers first)
from mmdet.registry import TRANSFORMS

from .compat import apply_shims
from .transforms import Corrupt, register_corrupt

__all__ = ["Corrupt"]

register_corrupt(TRANSFORMS)
apply_shims()
