"""Data augmentation used during transfer: PRIME (Modas, Rade et al., ECCV 2022).

Front door: :class:`PRIME` (``PRIME()``: the transfer experiments' settings;
``PRIME.imagenet_preset()``: the PRIME paper's ImageNet settings) and
:func:`apply_prime_0_255` for 0..255 images (:mod:`.prime`: the mixing). The primitives are
plain functions in :mod:`.color`, :mod:`.filtering` and :mod:`.diffeo`; the settings, presets
and command-line flags (no torch import) are in :mod:`robust_transfer.augment.params`. See ``docs/prime.md``.
"""
from __future__ import annotations

from .params import (IMAGENET_PRESET, PARAMETER_NAMES, PRESETS, TRANSFER_DEFAULTS,
                     add_prime_arguments, prime_params_from_args, resolve_params, validate_params)

# The names that need torch, and the module that defines each.
_TORCH_NAMES = {"PRIME": "prime", "apply_prime_0_255": "prime", "random_smooth_color": "color",
                "random_filter": "filtering", "random_diffeomorphism": "diffeo",
                "make_generator": "_sampling"}

__all__ = ["IMAGENET_PRESET", "PARAMETER_NAMES", "PRESETS", "TRANSFER_DEFAULTS",
           "add_prime_arguments", "prime_params_from_args", "resolve_params", "validate_params",
           *_TORCH_NAMES]


def __getattr__(name: str):
    # torch is imported on first use of PRIME, not by `import robust_transfer.augment`
    # (argument parsers import the flags from here)
    if name in _TORCH_NAMES:
        import importlib

        return getattr(importlib.import_module(f".{_TORCH_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
