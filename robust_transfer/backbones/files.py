"""Reading a checkpoint file safely and writing a converted one atomically.

Every reader goes through :func:`load_checkpoint_file` (``weights_only=True`` unless the user
opts out for a trusted file) and every writer through :func:`save_atomically`, so no
interrupted conversion leaves a half-written backbone file where a config will load it.
"""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any, Mapping

import torch

from .checks import CheckpointError


def load_checkpoint_file(path: str | os.PathLike, *, weights_only: bool = True) -> Any:
    """``torch.load`` a checkpoint on the CPU, with a clear error for missing/unsafe files.

    ``weights_only=True`` (the default) refuses pickled code objects; a file that needs them
    fails with a message explaining how to opt out for a *trusted* file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if not weights_only or not found:
            raise CheckpointError(f"{path}: not a readable torch checkpoint "
                                  f"({_last_line(error)})") from None
        raise CheckpointError(
            f"{path}: cannot be loaded with weights_only=True: it holds a pickled "
            f"{found.group(1)} object. If you trust this file, load it with weights_only=False "
            "(classification CLI: --unsafe-load)") from None
    except Exception as error:  # noqa: BLE001
        # torch.load fails in many ways on a file that is not a checkpoint (a zip of something
        # else, a text file, a truncated archive, a pickle of another program's classes):
        # RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, UnicodeDecodeError,
        # KeyError, AttributeError, ImportError... -- every one is "not a checkpoint" here.
        raise CheckpointError(f"{path}: not a readable torch checkpoint "
                              f"({type(error).__name__}: {_last_line(error)})") from None


def _last_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    informative = [line for line in lines if not line.startswith("Check the documentation")]
    return (informative or lines or [type(error).__name__])[-1]


def save_atomically(document: Mapping, dst: str | os.PathLike) -> None:
    """``torch.save`` ``document`` to ``dst`` through a temporary file in the same folder,
    fsynced, then renamed over ``dst``: readers see the old file or the whole new one."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    try:
        # Saved by path, not through a handle: torch names the archive inside the zip after
        # the file, and a stream would change the bytes the converters have always written.
        torch.save(dict(document), tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
