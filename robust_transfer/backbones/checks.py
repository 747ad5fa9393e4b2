"""The error every backbone reader and writer raises, and the key/shape check they all run.

A converted file that does not fit its model is the costly failure of this package: mmengine
loads pretrained backbones with ``strict=False``, so a wrong file trains from random weights
with only a log line. Every writer therefore compares its keys and shapes with the target
model's and raises :class:`CheckpointError` naming what is missing, unexpected or mis-shaped.
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model: unknown layout, missing or
    unexpected keys, wrong shapes."""


def preview_keys(keys: Iterable, limit: int = 5) -> str:
    """``'a, b, c, ... (12 in all)'``: a few sorted keys for an error message."""
    keys = sorted(map(str, keys))
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "") if keys else "none"


def check_state_dict(state_dict: Mapping, expected: Mapping[str, tuple[int, ...]],
                     what: str = "checkpoint", ignore: Iterable[str] = ()) -> None:
    """Raise :class:`CheckpointError` listing (a few) missing, unexpected and mis-shaped keys.

    ``ignore``: key prefixes allowed to be absent from ``state_dict`` (e.g. a new head).
    """
    ignore = tuple(ignore)
    missing = [k for k in expected if k not in state_dict and not k.startswith(ignore)]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [f"{k} {tuple(state_dict[k].shape)} != {tuple(expected[k])}"
                  for k in state_dict if k in expected and tuple(state_dict[k].shape) != tuple(expected[k])]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys ({preview_keys(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({preview_keys(unexpected)})")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches ({'; '.join(mismatched[:3])})")
    if problems:
        raise CheckpointError(f"{what} does not fit the model: " + "; ".join(problems))


def state_dict_shapes(build: Callable) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the state dict of the module ``build()`` returns, built on the meta
    device (no memory, no initialisation) when the module allows it, else on the CPU (the
    OpenMMLab Swin calls ``.item()`` while it is built)."""
    import torch

    try:
        with torch.device("meta"):
            module = build()
    except (RuntimeError, NotImplementedError):
        module = build()
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}
