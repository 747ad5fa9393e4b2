"""Fingerprints of the steps' inputs, so that a rerun redoes what is stale, not only what is
missing.

A step's fingerprint is the sha256 of one JSON document of its inputs:

* ``code``: ``robust_transfer.__version__`` (bump it when a change alters numbers; the tools'
  scripts and the library's source are deliberately not hashed, so that an edit that changes no
  number does not make a day of training stale);
* ``values``: the settings the planner put in :attr:`Step.inputs` (the converter and its
  arguments, the training's config name and ``--cfg-options``, the evaluation grid, main.py's
  recipe), without ``--resume`` and without how commands are launched (GPUs, Slurm);
* ``files``: the sha256 of each file of :attr:`Step.input_files` (the ImageNet checkpoint, the
  task config file's own text, a trained model of ``--checkpoint-dir``); ``None`` while absent;
* ``backbone``: the computing fields of the suite entry of its backbone (arch, format,
  checkpoint, convert, configs, standin; not labels or URLs);
* ``deps``: the current fingerprints of the steps it depends on, so a changed conversion makes
  the training and evaluation after it stale too.

When a step succeeds the executor writes ``<output>.<kind>[.<part>].fingerprint`` (JSON: the
fingerprint and its inputs) next to its first output. A step whose output is done but whose
recorded fingerprint differs is *stale*: the executor removes its stale output files and runs it
again; ``robust-transfer status`` says which input changed. Outputs from before fingerprints
existed have no sidecar: they count as done and are adopted (recorded) on the next run.

sha256 of big files is cached by (path, size, mtime) in ``<work dir>/.sha256-cache.json``, so a
checkpoint of hundreds of MB is read once.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from .layout import rel
from .steps import Step

SIDECAR_SUFFIX = ".fingerprint"
#: Fields of a suite's backbone entry that change what its steps compute.
BACKBONE_FIELDS = ("arch", "format", "checkpoint", "convert", "configs", "standin")
#: Flags that say how to continue, not what to compute.
NOT_INPUTS = ("--resume",)


def code_version() -> str:
    """The version of the code that produced an output (``robust_transfer.__version__``)."""
    from .. import __version__

    return __version__


def without_resume(argv: Iterable[str]) -> list[str]:
    """``argv`` without the flags that only say how to continue (:data:`NOT_INPUTS`)."""
    return [str(a) for a in argv if a not in NOT_INPUTS]


class DigestCache:
    """sha256 of files, cached by (absolute path, size, mtime) and kept in a JSON file."""

    def __init__(self, path: Path | None):
        self.path, self.entries, self.changed = path, {}, False
        if path is not None and path.is_file():
            try:
                self.entries = json.loads(path.read_text())
            except ValueError:
                self.entries = {}  # a damaged cache is only slower

    def sha256(self, path: Path) -> str | None:
        """The file's sha256; None when it does not exist, ``"folder"`` for a folder."""
        from ..results import file_sha256

        path = Path(path)
        try:
            stat = path.stat()
        except OSError:
            return None
        if path.is_dir():
            return "folder"
        key, stamp = str(path.resolve()), [stat.st_size, stat.st_mtime_ns]
        cached = self.entries.get(key)
        if cached and cached[:2] == stamp:
            return cached[2]
        digest = file_sha256(path)
        self.entries[key], self.changed = [*stamp, digest], True
        return digest

    def save(self) -> None:
        """Write the cache (atomically) when it learnt something."""
        if self.path is None or not self.changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.entries))
        os.replace(tmp, self.path)
        self.changed = False


def sidecar_path(step: Step) -> Path | None:
    """Where ``step`` records its fingerprint: next to its first output (None: no output)."""
    if not step.makes:
        return None
    output = Path(step.makes[0])
    part = step.id.split("#", 1)[1] if "#" in step.id else None
    name = f"{output.name}.{step.kind}" + (f".{part}" if part else "") + SIDECAR_SUFFIX
    return output.with_name(name)


class Fingerprints:
    """The fingerprints of a plan's steps: current, recorded, and the state they make."""

    def __init__(self, steps: Iterable[Step], suite: Any, cache: DigestCache):
        """``steps``: every step of the plan before ``--steps`` leaves some out (their
        fingerprints still feed their dependants')."""
        steps = list(steps)
        self.by_id = {s.id: s for s in steps}
        self.deps = {s.id: list(s.deps) for s in steps}  # before the plan prunes them
        self.suite, self.cache = suite, cache

    def inputs(self, step: Step) -> dict:
        """The document whose sha256 is the step's fingerprint."""
        backbone = self.suite.backbones.get(step.backbone) if step.backbone else None
        return {
            "code": code_version(),
            "values": json.loads(json.dumps(step.inputs, sort_keys=True, default=str)),
            "files": {name: self.cache.sha256(path) for name, path in sorted(step.input_files.items())},
            "backbone": {f: getattr(backbone, f) for f in BACKBONE_FIELDS} if backbone else None,
            "deps": {d: self.digest(self.by_id[d]) for d in self.deps.get(step.id, [])
                     if d in self.by_id},
        }

    def digest(self, step: Step) -> str:
        """The step's current fingerprint."""
        return _digest_of(self.inputs(step))

    def recorded(self, step: Step) -> dict | None:
        """The fingerprint document written when the step last succeeded (None: none)."""
        path = sidecar_path(step)
        try:
            return json.loads(path.read_text()) if path is not None else None
        except (OSError, ValueError):
            return None

    def is_current(self, step: Step) -> bool:
        """Whether the step's output is of its current inputs (True when nothing is recorded:
        outputs from before fingerprints, and steps without outputs)."""
        recorded = self.recorded(step)
        return recorded is None or recorded.get("fingerprint") == self.digest(step)

    def why_stale(self, step: Step) -> list[str]:
        """Which inputs differ from the recorded ones, in words ([] when none do)."""
        recorded = self.recorded(step)
        if recorded is None:
            return []
        return changed_inputs(recorded.get("inputs") or {}, self.inputs(step))

    def record(self, step: Step) -> None:
        """Write the step's current fingerprint next to its output (after it succeeded)."""
        path = sidecar_path(step)
        if path is None:
            return
        inputs = self.inputs(step)
        document = {"step": step.id, "fingerprint": _digest_of(inputs), "inputs": inputs}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(document, indent=1, sort_keys=True, default=str) + "\n")
        os.replace(tmp, path)
        self.cache.save()

    def invalidate(self, step: Step) -> None:
        """Before a stale step runs again: remove its sidecar and its output files (folders
        stay: the tools overwrite what is in them), so nothing stale is resumed or trusted."""
        for path in [sidecar_path(step), *step.makes]:
            if path is not None and Path(path).is_file():
                Path(path).unlink()


def _digest_of(inputs: Mapping) -> str:
    """The fingerprint of an inputs document (:meth:`Fingerprints.inputs`)."""
    text = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def changed_inputs(before: Mapping, now: Mapping) -> list[str]:
    """Words for each input that differs between two fingerprint documents."""
    reasons = []
    if before.get("code") != now.get("code"):
        reasons.append(f"code version {before.get('code')} -> {now.get('code')}")
    old_files, new_files = before.get("files") or {}, now.get("files") or {}
    for name in sorted(set(old_files) | set(new_files)):
        if old_files.get(name) != new_files.get(name):
            reasons.append(f"{name} file changed (sha256 {str(old_files.get(name))[:12]} -> "
                           f"{str(new_files.get(name))[:12]})")
    old_values, new_values = before.get("values") or {}, now.get("values") or {}
    for name in sorted(set(old_values) | set(new_values)):
        if old_values.get(name) != new_values.get(name):
            reasons.append(f"setting '{name}' changed")
    if before.get("backbone") != now.get("backbone"):
        reasons.append("the suite's backbone entry changed")
    old_deps, new_deps = before.get("deps") or {}, now.get("deps") or {}
    for dep in sorted(set(old_deps) | set(new_deps)):
        if old_deps.get(dep) != new_deps.get(dep):
            reasons.append(f"its input step {dep} changed")
    return reasons


def step_states(steps: Iterable[Step], fingerprints: Fingerprints) -> list[tuple[Step, str, str]]:
    """(step, state, why) of each step: ``done``, ``stale`` (done, but an input changed) or
    ``pending`` (its output is missing or incomplete)."""
    states = []
    for step in steps:
        if step.done is None or not step.done():
            why = "always runs (writes from what exists)" if step.done is None else \
                f"no complete output yet ({', '.join(rel(p) for p in step.makes) or 'none'})"
            states.append((step, "pending", why))
            continue
        reasons = fingerprints.why_stale(step)
        if reasons:
            states.append((step, "stale", "; ".join(reasons)))
        elif fingerprints.recorded(step) is None and step.makes:
            states.append((step, "done", "no fingerprint recorded yet (adopted at the next run)"))
        else:
            states.append((step, "done", ""))
    return states
