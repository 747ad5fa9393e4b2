"""Typed steps and the plan: what a planner makes and the executor runs.

A step is one command with its kind (``STEP_KINDS``), the task it belongs to (a real task or
None), the backbone and mode it is about, its dependencies, what it reads (``needs``) and writes
(``makes``), a ``done`` check that makes reruns skip it, and the ``inputs`` / ``input_files``
its fingerprint is made of (a done step whose inputs changed is stale: :mod:`.fingerprint`). Nothing matches steps by their ids;
the ids only name them in logs and dependencies.
"""
from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .layout import REPO, rel
from .suite import TASKS

PYTHON = "{python}"  # placeholder for the interpreter in a plan's commands
STEP_KINDS = ("prepare", "convert", "train", "merge", "evaluate", "report")


@dataclass
class Step:
    """One command of a plan."""

    id: str
    kind: str
    title: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    deps: list[str] = field(default_factory=list)
    done: Callable[[], bool] | None = None
    resolve: Callable[["Step"], list[str]] | None = None  # argv recomputed just before running
    refs: list[str] = field(default_factory=list)  # repository files the command uses
    stream: bool = False  # show its output on the terminal even when logging to files
    soft_deps: bool = False  # runs after its deps even when some failed
    task: str | None = None  # the task it serves (None: prepare, report, shared conversions)
    backbone: str | None = None
    mode: str | None = None
    gpus: int = 0  # GPUs of the node it occupies while it runs (the executor hands them out)
    torchrun: bool = False  # needs a master port of its own (tools/dist_*.sh read PORT)
    needs: list[tuple[str, Path]] = field(default_factory=list)  # (what, path) read by it
    makes: list[Path] = field(default_factory=list)  # files/folders it writes for later steps
    # what its fingerprint is made of (robust_transfer.study.fingerprint): settings, and files
    # whose sha256 counts; ``current`` (set by the plan) says whether its output is of them
    inputs: dict[str, Any] = field(default_factory=dict)
    input_files: dict[str, Path] = field(default_factory=dict)
    current: Callable[["Step"], bool] | None = None

    def __post_init__(self):
        if self.kind not in STEP_KINDS:
            raise ValueError(f"step kind {self.kind!r}; allowed: {', '.join(STEP_KINDS)}")
        if self.task is not None and self.task not in TASKS:
            raise ValueError(f"step task {self.task!r}; allowed: {', '.join(TASKS)} or None")

    def is_done(self) -> bool:
        """Its output exists and complete, and (with fingerprints) of its current inputs."""
        return bool(self.done and self.done()) and (self.current is None or self.current(self))

    def command(self, python: str = sys.executable, argv: Sequence[str] | None = None) -> list[str]:
        """The argv (or ``argv``, e.g. as :attr:`resolve` made it) with the interpreter filled in."""
        return [python if a == PYTHON else a for a in (self.argv if argv is None else argv)]

    def environment(self, python: str = sys.executable) -> dict[str, str]:
        """The step's own environment variables, with the interpreter filled in."""
        return {k: (python if v == PYTHON else v) for k, v in self.env.items()}

    def shell(self, python: str = "python", extra_env: Mapping[str, str] | None = None) -> str:
        """A runnable shell line (from the repository root): environment, then the command."""
        variables = {**(extra_env or {}), **self.environment(python)}
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in variables.items())
        return (env + " " if env else "") + " ".join(shlex.quote(a) for a in self.command(python))


@dataclass
class Plan:
    """The steps of a suite in dependency order, where they work and where the report goes."""

    suite: Any  # the Suite planned (its name and title head the printed plan)
    steps: list[Step]
    work_dir: Path
    report_dir: Path
    notes: list[str] = field(default_factory=list)
    fingerprints: Any = None  # robust_transfer.study.fingerprint.Fingerprints of its steps

    def missing_refs(self) -> list[str]:
        """Repository files the commands name that do not exist."""
        return sorted({ref for step in self.steps for ref in step.refs
                       if not (REPO / ref).exists()})

    def missing_inputs(self) -> list[str]:
        """The preflight: every data set and checkpoint that a step still to run reads, that does
        not exist and that no step of this plan writes, as ``"what: path"`` (each once)."""
        made = [Path(os.path.normpath(p)) for step in self.steps for p in step.makes]
        missing: list[str] = []
        for step in self.steps:
            if step.is_done():
                continue
            for what, path in step.needs:
                path = Path(os.path.normpath(path))
                if path.exists() or any(m == path or m in path.parents for m in made):
                    continue
                entry = f"{what}: {rel(path)}"
                if entry not in missing:
                    missing.append(entry)
        return missing


def missing_message(missing: Sequence[str]) -> str:
    """One message listing every missing input (what the preflight reports)."""
    return (f"{len(missing)} input(s) of the plan are missing; nothing was started "
            "(docs/reproduce.md: data layout, ImageNet checkpoints):\n" +
            "\n".join(f"  - {entry}" for entry in missing))


def results_complete(path: Path, cells: Sequence[tuple[str, int]]) -> bool:
    """Whether the results file ``path`` holds every (corruption, severity) of ``cells``."""
    from ..results import get_cell

    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    have = {"cells": document.get("cells", {})}
    return all(get_cell(have, c, s) is not None for c, s in cells)
