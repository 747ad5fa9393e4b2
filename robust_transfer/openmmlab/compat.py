"""Compatibility shims for mmengine / mmcv / mmdet / mmseg on torch >= 2.6 and numpy 2.

``torch.load`` defaults to ``weights_only=True`` since torch 2.6, and mmengine's
``load_checkpoint`` relies on that default. The checkpoints mmengine's own runner writes hold
``HistoryBuffer`` objects and numpy arrays/scalars in their ``message_hub`` meta, which the
restricted unpickler refuses (``UnpicklingError: Weights only load failed``). Rather than turn
``weights_only`` off (which would execute arbitrary pickles), we allow-list exactly those
classes with ``torch.serialization.add_safe_globals``.
"""
from __future__ import annotations

import importlib

_APPLIED: set[str] = set()


def _numpy_pickle_globals() -> list:
    """The numpy objects that pickled arrays, dtypes and scalars reference, under both the
    numpy 2 (``numpy._core``) and numpy 1 (``numpy.core``) module names."""
    import numpy as np

    allowed: list = [np.ndarray, np.dtype]
    core = importlib.import_module("numpy._core.multiarray" if hasattr(np, "_core") else "numpy.core.multiarray")
    for name in ("_reconstruct", "scalar"):
        obj = getattr(core, name)
        allowed.append(obj)
        allowed.append((obj, f"numpy.core.multiarray.{name}"))
        allowed.append((obj, f"numpy._core.multiarray.{name}"))
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:  # numpy >= 1.25 pickles dtypes through their classes
        allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return allowed


def _history_buffer_getattr(owner, name: str):
    """Stand-in for ``builtins.getattr`` in the restricted unpickler.

    ``HistoryBuffer`` pickles its ``statistics_methods`` dict as ``getattr(HistoryBuffer,
    'mean')`` and so on. Allow-listing the real ``getattr`` would let a crafted checkpoint reach
    any attribute of any allowed object; this one resolves only public methods of
    ``HistoryBuffer`` itself.
    """
    import pickle

    from mmengine.logging import HistoryBuffer

    if owner is HistoryBuffer and not name.startswith("_") and callable(getattr(HistoryBuffer, name, None)):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f"getattr({owner!r}, {name!r}) is not allowed in a checkpoint")


def allow_mmengine_checkpoint_globals() -> list:
    """Allow-list the classes found in checkpoints written by mmengine's runner, so that
    ``mmengine.runner.load_checkpoint`` works under ``torch.load(weights_only=True)``.

    Returns the objects added. Idempotent.
    """
    import torch

    from mmengine.logging import HistoryBuffer

    allowed = [HistoryBuffer, (_history_buffer_getattr, "builtins.getattr")] + _numpy_pickle_globals()
    if "mmengine_checkpoint_globals" not in _APPLIED:
        torch.serialization.add_safe_globals(allowed)
        _APPLIED.add("mmengine_checkpoint_globals")
    return allowed


def apply_shims() -> list[str]:
    """Apply every shim (idempotent); returns the names of the shims in force."""
    allow_mmengine_checkpoint_globals()
    return sorted(_APPLIED)
