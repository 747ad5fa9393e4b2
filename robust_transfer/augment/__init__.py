"""Data augmentation used during transfer: PRIME (Modas, Rade et al., ECCV 2022).

Front door: :class:`PRIME` (``PRIME()``: the transfer experiments' settings;
``PRIME.imagenet_preset()``: the PRIME paper's ImageNet settings) and
:func:`apply_prime_0_255` for 0..255 images. The primitives are plain functions in
:mod:`robust_transfer.augment.prime`; the settings, presets and command-line flags (no torch
import) are in :mod:`robust_transfer.augment.params`. See ``docs/prime.md``.
"""
from __future__ import annotations

from .params import (IMAGENET_PRESET, PARAMETER_NAMES, PRESETS, TRANSFER_DEFAULTS,
                     add_prime_arguments, prime_params_from_args, resolve_params, validate_params)

_TORCH_NAMES = ("PRIME", "apply_prime_0_255", "random_smooth_color", "random_filter",
                "random_diffeomorphism", "make_generator")

__all__ = ["IMAGENET_PRESET", "PARAMETER_NAMES", "PRESETS", "TRANSFER_DEFAULTS",
           "add_prime_arguments", "prime_params_from_args", "resolve_params", "validate_params",
           *_TORCH_NAMES]


def __getattr__(name: str):
    # torch is imported on first use of PRIME, not by `import robust_transfer.augment`
    # (argument parsers import the flags from here)
    if name in _TORCH_NAMES:
        from . import prime

        return getattr(prime, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
