"""Runs a plan's steps: in dependency order, up to ``jobs`` at a time, skipping finished ones; a
failed step skips its dependants and the rest goes on.

Two ways to start a command: ``subprocess`` (one process per command, what real runs use) and
``fork`` (smoke runs and the demo: the frameworks are imported once, then every Python command
runs in a forked child). With GPU slots (:mod:`.gpu_slots`, ``--gpus N``) a step that needs GPUs
starts only when that many are free and runs on exactly those, torchrun jobs on master ports of
their own.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .forking import fork_python
from .gpu_slots import GpuSlots, Placement
from .layout import REPO, rel
from .planners import PLANNERS
from .progress import SuiteProgress
from .steps import Plan, Step
from .suite import SuiteError

#: Modules the fork executor imports once for the steps that are not a task's training or
#: evaluation (synthetic data, stand-ins, conversions, merges).
PREPARE_PRELOAD = ("torch", "torchvision", "robust_transfer.corruptions")


def preload_modules(step: Step) -> tuple[str, ...]:
    """What the fork executor imports once for ``step``."""
    if step.kind in ("train", "evaluate") and step.task in PLANNERS:
        return PLANNERS[step.task].preload
    return PREPARE_PRELOAD if step.kind in ("prepare", "convert", "merge") else ()


@dataclass
class _Running:
    step: Step
    pid: int
    start: float
    log: Path | None
    popen: Any = None
    placement: Placement | None = None  # the GPUs and port it holds


class Executor:
    """Runs a plan's steps: in dependency order, up to ``jobs`` at a time, skipping finished
    ones; a failed step skips its dependants and the rest goes on."""

    def __init__(self, plan: Plan, *, mode: str = "subprocess", jobs: int = 1,
                 log_dir: Path | None = None, threads: int | None = None,
                 python: str = sys.executable, slots: GpuSlots | None = None):
        """``slots``: the node's GPUs and ports; a step with ``gpus`` starts only when that
        many are free and runs on them."""
        if mode not in ("subprocess", "fork"):
            raise ValueError(f"executor must be subprocess or fork, got {mode!r}")
        if mode == "fork" and not hasattr(os, "fork"):
            mode = "subprocess"
        self.plan, self.mode, self.jobs = plan, mode, max(1, int(jobs))
        self.log_dir, self.threads, self.python, self.slots = log_dir, threads, python, slots
        self.placements: dict[str, Placement] = {}  # step id -> the placement it ran with
        self.status: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        self._number = {s.id: i for i, s in enumerate(plan.steps, 1)}
        self.progress = SuiteProgress(plan.steps, parallel=self.jobs)

    # -- launching
    def _env(self, step: Step) -> dict[str, str]:
        env = dict(os.environ)
        placement = self.placements.get(step.id)
        if placement is not None:
            env.update(placement.env())
        env.update(step.environment(self.python))
        if self.threads:
            env.setdefault("OMP_NUM_THREADS", str(self.threads))
            env.setdefault("MKL_NUM_THREADS", str(self.threads))
        return env

    def _log_path(self, step: Step) -> Path | None:
        if self.log_dir is None or step.stream:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return self.log_dir / (step.id.replace(":", "__").replace("/", "__") + ".log")

    def _launch(self, argv: list[str], step: Step, log: Path | None) -> tuple[int, Any]:
        env = self._env(step)
        if self.mode == "fork" and argv[0] == self.python:
            return fork_python(argv[1:], env, log, self.threads), None
        import subprocess

        handle = open(log, "w") if log else None
        try:
            popen = subprocess.Popen(argv, cwd=REPO, env=env, stdout=handle or None,
                                     stderr=subprocess.STDOUT if handle else None)
        finally:
            if handle:
                handle.close()
        return popen.pid, popen

    def preload(self) -> None:
        """Import the frameworks the plan's steps need, once, before forking (fork mode)."""
        if self.mode != "fork":
            return
        import importlib
        import warnings

        wanted = list(dict.fromkeys(m for step in self.plan.steps for m in preload_modules(step)))
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for module in wanted:
                try:
                    importlib.import_module(module)
                except ImportError:
                    pass
        if wanted:
            print(f"[reproduce] frameworks imported once for the forked commands "
                  f"({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)

    # -- the loop
    def run(self) -> int:
        """Run every step; returns 1 when a step failed or was skipped, else 0."""
        pending = [s for s in self.plan.steps]
        running: dict[int, _Running] = {}
        if any(not s.is_done() for s in pending):
            self.preload()
        while pending or running:
            launched, progressed = self._start_ready(pending, running)
            if not running and not progressed:
                for step in pending:  # dependencies that no step of the plan provides
                    self.status[step.id] = "skipped"
                    self.progress.finish(step)
                    self._say(step, f"skipped {step.title} (unmet dependencies)")
                break
            if running and not launched:
                self._wait_one(running)
        return 1 if any(s in ("failed", "skipped") for s in self.status.values()) else 0

    def _start_ready(self, pending: list[Step], running: dict[int, _Running]) -> tuple[bool, bool]:
        """Settle or start every pending step whose dependencies have finished, while fewer
        than ``jobs`` run; returns (whether one was started, whether any was settled)."""
        launched = progressed = False
        for step in list(pending):
            if len(running) >= self.jobs:
                break
            states = [self.status.get(d) for d in step.deps]
            if any(s is None for s in states):
                continue  # a dependency has not finished
            failed = [d for d, s in zip(step.deps, states) if s in ("failed", "skipped")]
            if (failed and not step.soft_deps) or step.is_done():
                pending.remove(step)
                progressed = True
                done = not (failed and not step.soft_deps)
                self.status[step.id] = "done" if done else "skipped"
                if done:
                    self._adopt(step)
                self.progress.finish(step)
                self._say(step, f"done already: {step.title}" if done else
                          f"skipped {step.title} (failed: {', '.join(failed)})")
                continue
            placement = None
            if self.slots is not None and step.gpus:
                placement = self.slots.take(step.gpus, step.torchrun)
                if placement is None:
                    continue  # waits for GPUs; a later step that fits may start meanwhile
            pending.remove(step)
            progressed = True
            job = self._start(step, placement)
            if job is not None:
                running[job.pid] = job
                launched = True
        return launched, progressed

    def _start(self, step: Step, placement: Placement | None) -> _Running | None:
        """Launch ``step`` on ``placement``; None when its command cannot be made."""
        try:
            argv = step.resolve(step) if step.resolve else step.argv
        except SuiteError as error:
            if placement is not None:
                self.slots.give_back(placement)
            self.status[step.id] = "failed"
            self.progress.finish(step)
            self._say(step, f"FAILED {step.title}: {error}")
            return None
        argv = step.command(self.python, argv)
        self._forget_stale_output(step)
        log = self._log_path(step)
        where = ""
        if placement is not None:
            self.placements[step.id] = placement
            where = f" [GPU {','.join(placement.gpus)}" + \
                (f", port {placement.port}]" if placement.port is not None else "]")
        self._say(step, f"{step.title}{where}" + (f"  (log: {rel(log)})" if log else ""))
        pid, popen = self._launch(argv, step, log)
        self.progress.start(step)
        return _Running(step, pid, time.perf_counter(), log, popen, placement)

    def _wait_one(self, running: dict[int, _Running]) -> None:
        """Wait for a running step to end; record how it ended and free its GPUs."""
        pid, status = os.waitpid(-1, 0)
        if pid not in running:
            return
        job = running.pop(pid)
        if job.placement is not None:
            self.slots.give_back(job.placement)
        code = os.waitstatus_to_exitcode(status)
        if job.popen is not None:
            job.popen.returncode = code
        elapsed = time.perf_counter() - job.start
        self.seconds[job.step.id] = elapsed
        self.progress.finish(job.step, elapsed)
        if code == 0:
            self.status[job.step.id] = "ok"
            if self.plan.fingerprints is not None:
                self.plan.fingerprints.record(job.step)
            self._say(job.step, f"finished {job.step.title} ({elapsed:.0f} s); "
                                f"suite: {self.progress.line()}")
            return
        self.status[job.step.id] = "failed"
        self._say(job.step, f"FAILED {job.step.title} (exit {code}, {elapsed:.0f} s)" +
                  (f"; last lines of {rel(job.log)}:" if job.log else ""))
        if job.log:
            tail = job.log.read_text(errors="replace").splitlines()[-25:]
            print("\n".join("    " + line for line in tail), file=sys.stderr, flush=True)

    def _adopt(self, step: Step) -> None:
        """A finished output from before fingerprints: record its inputs from now on."""
        fingerprints = self.plan.fingerprints
        if fingerprints is not None and step.makes and fingerprints.recorded(step) is None:
            fingerprints.record(step)

    def _forget_stale_output(self, step: Step) -> None:
        """A step about to run again because its inputs changed: say why, and remove what it
        wrote from the old inputs (a results file or checkpoint would otherwise be resumed)."""
        fingerprints = self.plan.fingerprints
        if fingerprints is None or step.kind not in ("convert", "train", "evaluate") or \
                step.done is None or not step.done():
            return
        reasons = fingerprints.why_stale(step)
        if reasons:
            self._say(step, f"stale, redone: {step.title} ({'; '.join(reasons)})")
            fingerprints.invalidate(step)

    def _say(self, step: Step, text: str) -> None:
        print(f"[reproduce {self._number[step.id]}/{len(self._number)}] {text}", file=sys.stderr,
              flush=True)
