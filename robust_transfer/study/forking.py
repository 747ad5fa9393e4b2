"""Run a Python command in a forked child of this process (the ``fork`` executor): the
frameworks imported once by the parent are there already, which saves the ~10 s of imports per
command on a small CPU machine."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping

from .layout import REPO, from_repo


def fork_python(args: list[str], env: Mapping[str, str], log: Path | None,
                threads: int | None) -> int:
    """Run ``python ARGS`` (a script path or ``-m module``) in a forked child of this process,
    with the modules this process has imported; returns the child's pid."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        _redirect(log)
        os.chdir(REPO)
        os.environ.clear()
        os.environ.update(env)
        if threads:
            import torch

            torch.set_num_threads(threads)
        _run(args)
        code = 0
    except SystemExit as exit_:
        code = _exit_code(exit_)
    except BaseException:  # noqa: BLE001 -- report anything, then leave the child
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _redirect(log: Path | None) -> None:
    if log is not None:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    # write to the file descriptors (the parent's sys.stdout may be something else, e.g. a test
    # runner's capture)
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)


def _run(args: list[str]) -> None:
    import runpy

    if args[0] == "-m":
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        script = str(from_repo(args[0]))
        sys.argv = [script, *args[1:]]
        sys.path.insert(0, str(Path(script).parent))
        runpy.run_path(script, run_name="__main__")


def _exit_code(exit_: SystemExit) -> int:
    if exit_.code is None:
        return 0
    if isinstance(exit_.code, int):
        return exit_.code
    print(exit_.code, file=sys.stderr)
    return 1
