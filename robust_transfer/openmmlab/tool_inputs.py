"""Checking the tools' inputs and outputs before any model is built.

The train, test and robustness tools of both frameworks used to find a missing config, a file
that is not a checkpoint or an output folder they cannot write only deep inside mmengine
(hundreds of lines of traceback, sometimes after the first grid cell was computed). Each check
here raises a one-line ``ValueError``; :func:`exit_with_error` prints it as ``prog: error: ...``
and exits with status 2 (argparse's status for bad arguments), without argparse's usage text,
which for these tools runs to a dozen lines and hides the one that matters.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Mapping, NoReturn

#: The config formats mmengine's ``Config.fromfile`` reads.
CONFIG_SUFFIXES = (".py", ".json", ".yaml", ".yml")


def exit_with_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """Print ``prog: error: message`` (one line) on stderr and exit with status 2."""
    parser.exit(2, f"{parser.prog}: error: {' '.join(str(message).split())}\n")


def check_config_file(path: str | os.PathLike) -> Path:
    """``ValueError`` unless ``path`` is an existing config file mmengine can read."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"config {path} does not exist")
    if not path.is_file():
        raise ValueError(f"config {path} is a folder, not a config file")
    if path.suffix.lower() not in CONFIG_SUFFIXES:
        raise ValueError(f"config {path}: not a config file (expected {', '.join(CONFIG_SUFFIXES)})")
    return path


def is_remote(location: str) -> bool:
    """True for what mmengine's ``load_checkpoint`` fetches itself (``http://``,
    ``torchvision://``, ``open-mmlab://``, ...): such a checkpoint cannot be checked up front."""
    return "://" in str(location)


def check_checkpoint_file(path: str | os.PathLike, what: str = "checkpoint") -> None:
    """``ValueError`` unless ``path`` is a readable torch checkpoint.

    Reads the whole file with :func:`robust_transfer.backbones.files.load_checkpoint_file`
    (``weights_only=True``; the framework plugin's allow-list for mmengine's checkpoints must be
    in force, i.e. the config loaded first): a second of reading instead of a model built for
    nothing and a torch.load traceback. Remote checkpoints are left to mmengine.
    """
    if is_remote(str(path)):
        return
    from ..backbones.files import CheckpointError, load_checkpoint_file

    if Path(path).is_dir():
        raise ValueError(f"{what} {path} is a folder, not a checkpoint file")
    try:
        load_checkpoint_file(path, weights_only=True)
    except CheckpointError as error:
        raise ValueError(f"{what}: {error}") from None


def check_writable_outputs(files: Mapping[str, object] = (), folders: Mapping[str, object] = ()) -> None:
    """``ValueError`` naming the first output that cannot be written: ``files`` and ``folders``
    map a flag name (``'--out'``) to a path or None (not asked for). Creates nothing."""
    from ..output_paths import check_writable_file, check_writable_folder

    for what, path in dict(files).items():
        if path is not None:
            check_writable_file(path, what)
    for what, path in dict(folders).items():
        if path is not None:
            check_writable_folder(path, what)


def check_robustness_inputs(args: argparse.Namespace, work_dir: str, json_path: Path,
                            pkl_path: Path | None) -> None:
    """``tools/test_robustness.py``'s checks before the model is built: the checkpoint (a local
    file, checked by the caller) is a readable checkpoint; the results JSON, the mmdet pickle, ``--show-dir`` and the work
    dir (logs) can be written."""
    check_checkpoint_file(args.checkpoint)
    check_writable_outputs(files={"results JSON": json_path, "--out": pkl_path},
                           folders={"--show-dir": args.show_dir, "--work-dir": work_dir})
