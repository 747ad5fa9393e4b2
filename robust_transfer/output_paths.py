"""Checking, before any work starts, that an output can be written.

A command that computes for minutes and then fails to save its result wastes the minutes and
ends in a traceback; these checks turn an unwritable ``--out`` into one ValueError line up
front. They create nothing: the nearest existing folder above the output is probed with a
temporary file (``os.access`` alone says yes to root on a read-only mount).
:func:`write_yaml_atomically` then writes a small YAML output whole or not at all.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def _probe_folder(folder: Path, what: str) -> None:
    if not folder.is_dir():
        raise ValueError(f"{what}: {folder} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(f"{what}: cannot write in {folder} ({error.strerror or error})") from None


def check_writable_file(path: str | os.PathLike, what: str = "output") -> Path:
    """Raise a one-line ValueError unless a file can be written at ``path`` (its folder may
    not exist yet). Returns ``path`` as a Path."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what}: {path} is a folder; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{what}: {path} exists and is read-only")
    _probe_folder(_nearest_existing(path.parent.absolute()), f"{what} {path}")
    return path


def check_writable_folder(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Raise a one-line ValueError unless ``path`` is (or can be made) a writable folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what}: {path} is a file, not a folder")
    _probe_folder(_nearest_existing(path.absolute()), f"{what} {path}")
    return path


def write_yaml_atomically(path: str | os.PathLike, document) -> None:
    """``yaml.safe_dump`` ``document`` (keys in their order) to ``path`` through a temporary
    file in the same folder renamed over it: readers see the old file or the whole new one."""
    import yaml

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(document, handle, sort_keys=False)
    os.replace(tmp, path)
