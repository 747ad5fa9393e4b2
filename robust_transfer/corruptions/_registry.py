"""The corruption registry: a bare decorator keyed on the function's name (timm style).

Contract of a registered numpy corruption::

    def fog(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray

``image`` is a uint8 RGB array of shape (H, W, 3) with H, W >= 32 (the front door in
``robust_transfer.corruptions`` validates and converts every input to that form); ``severity`` is
1..5; every random number is drawn from ``rng`` in the order imagecorruptions 1.1.2 draws it from
numpy's global state. The result is an (H, W, 3) array with values in [0, 255] (float or uint8);
the front door converts it to uint8 by truncation, exactly as imagecorruptions' ``np.uint8(...)``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

CorruptionFn = Callable[[np.ndarray, int, np.random.RandomState], np.ndarray]

_NUMPY_CORRUPTIONS: dict[str, CorruptionFn] = {}


def register_corruption(fn: CorruptionFn) -> CorruptionFn:
    """Register ``fn`` as the numpy implementation of the corruption named ``fn.__name__``."""
    if fn.__name__ in _NUMPY_CORRUPTIONS:
        raise ValueError(f"corruption {fn.__name__!r} is registered twice")
    _NUMPY_CORRUPTIONS[fn.__name__] = fn
    return fn


def get_numpy_corruption(name: str) -> CorruptionFn:
    """Return the registered numpy implementation of ``name`` (a KeyError if there is none)."""
    return _NUMPY_CORRUPTIONS[name]


def registered_corruptions() -> list[str]:
    """Names of all registered numpy corruptions, in registration order."""
    return list(_NUMPY_CORRUPTIONS)


# ----------------------------------------------------------------------------- torch backend
# Contract of a registered torch corruption (see ``_torch``)::
#
#     def fog(x: torch.Tensor, severity: int, rng: PhiloxStreams) -> torch.Tensor
#
# ``x`` is a float32 (N, 3, H, W) tensor with values in [0, 255] on any device, ``rng`` the
# batch's Philox streams (one per image, on x's device, ``_philox``); the result is float32 (N, 3, H, W) clipped to [0, 255]. A function
# marked ``fn.uint8_in_out = True`` (8-bit codecs: pixelate, jpeg_compression) receives and
# returns uint8 (N, 3, H, W) instead.

_TORCH_CORRUPTIONS: dict[str, Callable] = {}


def register_torch_corruption(fn: Callable) -> Callable:
    """Register ``fn`` as the torch implementation of the corruption named ``fn.__name__``."""
    if fn.__name__ in _TORCH_CORRUPTIONS:
        raise ValueError(f"torch corruption {fn.__name__!r} is registered twice")
    _TORCH_CORRUPTIONS[fn.__name__] = fn
    return fn


def get_torch_corruption(name: str) -> Callable:
    """Return the registered torch implementation of ``name`` (a KeyError if there is none)."""
    return _TORCH_CORRUPTIONS[name]


def registered_torch_corruptions() -> list[str]:
    """Names of all registered torch corruptions, in registration order."""
    return list(_TORCH_CORRUPTIONS)
