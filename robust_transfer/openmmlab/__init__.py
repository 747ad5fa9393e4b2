"""Everything OpenMMLab (mmdet 3.x detection, mmseg 1.x segmentation), one concept per module:

* plugins, named in configs' ``custom_imports``, that only register: ``mmdet``, ``mmseg``
  (the seeded ``Corrupt`` transform of ``transforms``, and the ``compat`` shims),
  ``prime_preprocessor`` (PRIME during fine-tuning), ``corrupt_preprocessor`` (batched
  corruption; imported by the robustness tool itself);
* ``adapter``: the task adapter as data; ``detection`` / ``segmentation``: its two instances;
* ``pipeline``: the one dataset-wrapper walk, ``Corrupt`` insertion and batch-mode surgery;
* ``runner``: the one ``load_config`` and ``build_runner`` (train, test and robustness of both
  frameworks), ``--amp``, the CPU-distributed shim;
* ``evaluator``: one Runner, one checkpoint load, one grid cell per call;
* ``corruption_choice``: ``--backend`` / ``--corrupt-on auto``;
* ``tools`` (train / test) and ``robustness`` (the grid): the mains that each framework's
  ``tools/*.py`` wrap.

This package's ``__init__`` imports no framework: :func:`apply_shims` is the compatibility
shims' front door (each shim small, named, tested; idempotent).
"""
from .compat import allow_mmengine_checkpoint_globals, apply_shims

__all__ = ["allow_mmengine_checkpoint_globals", "apply_shims"]
