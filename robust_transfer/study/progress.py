"""Progress of a whole suite run: steps settled out of all, and an estimate of the time left.

A suite mixes steps of very different lengths (a conversion takes seconds, a training hours), so
the estimate is per kind of step: the mean duration of the finished steps of the same kind (and
task). While some kind of step has not finished once, the estimate covers only the kinds seen
and is printed as a lower bound ("more than ..."). Steps that were done already or skipped take
no time. The work left is spread over the steps that run at once.
"""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Callable, Iterable

from .steps import Step


def _kind(step: Step) -> tuple[str, str | None]:
    return step.kind, step.task


def format_duration(seconds: float) -> str:
    """``3h05m``, ``4m10s`` or ``12s``."""
    seconds = int(round(max(0.0, seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class SuiteProgress:
    """Counts settled steps and estimates the time left from the finished ones."""

    def __init__(self, steps: Iterable[Step], parallel: int = 1,
                 clock: Callable[[], float] = time.perf_counter):
        self.steps = list(steps)
        self.parallel = max(1, int(parallel))
        self.clock = clock
        self.started_at = clock()
        self.settled: set[str] = set()
        self.running: dict[str, float] = {}  # step id -> when it started
        self.durations: dict[tuple, list[float]] = defaultdict(list)

    def start(self, step: Step) -> None:
        """``step`` began running now."""
        self.running[step.id] = self.clock()

    def finish(self, step: Step, seconds: float | None = None) -> None:
        """``step`` ended (ran, failed, was done already or skipped); ``seconds`` is how long
        it ran, None when it did not run."""
        self.running.pop(step.id, None)
        self.settled.add(step.id)
        if seconds is not None:
            self.durations[_kind(step)].append(seconds)

    def _estimate(self, step: Step) -> float | None:
        same = self.durations.get(_kind(step))
        return sum(same) / len(same) if same else None

    def seconds_left(self) -> tuple[float | None, bool]:
        """(estimated wall time until every step has settled, whether every step left could be
        estimated); (None, False) before any step of a kind still to come has finished."""
        now, total, known, complete = self.clock(), 0.0, False, True
        for step in self.steps:
            if step.id in self.settled:
                continue
            estimate = self._estimate(step)
            if estimate is None:
                complete = False
                continue
            known = True
            if step.id in self.running:
                estimate = max(0.0, estimate - (now - self.running[step.id]))
            total += estimate
        if not known and not complete:
            return None, False
        return total / min(self.parallel, max(1, len(self.steps) - len(self.settled))), complete

    def line(self) -> str:
        """``12/31 steps, 2 running, 4m10s elapsed, about 9m30s left``."""
        parts = [f"{len(self.settled)}/{len(self.steps)} steps"]
        if self.running:
            parts.append(f"{len(self.running)} running")
        parts.append(f"{format_duration(self.clock() - self.started_at)} elapsed")
        left, complete = self.seconds_left()
        if len(self.settled) < len(self.steps):
            if left is None:
                parts.append("time left unknown")
            else:
                parts.append(f"{'about' if complete else 'more than'} {format_duration(left)} left")
        return ", ".join(parts)
