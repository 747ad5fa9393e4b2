"""Progress of a whole suite run: steps settled out of all, and an estimate of the time left.

A suite mixes steps of very different lengths (a conversion takes seconds, a training hours), so
the estimate is per kind of step: the mean duration of the finished steps of the same kind (and
task), the mean of all finished steps for a kind not seen yet. Steps that were done already or
skipped take no time. The work left is spread over the steps that run at once.
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
        if same:
            return sum(same) / len(same)
        every = [d for durations in self.durations.values() for d in durations]
        return sum(every) / len(every) if every else None

    def seconds_left(self) -> float | None:
        """Estimated wall time until every step has settled; None before any step ran."""
        now, total = self.clock(), 0.0
        for step in self.steps:
            if step.id in self.settled:
                continue
            estimate = self._estimate(step)
            if estimate is None:
                return None
            if step.id in self.running:
                estimate = max(0.0, estimate - (now - self.running[step.id]))
            total += estimate
        return total / min(self.parallel, max(1, len(self.steps) - len(self.settled)))

    def line(self) -> str:
        """``12/31 steps, 2 running, 4m10s elapsed, about 9m30s left``."""
        parts = [f"{len(self.settled)}/{len(self.steps)} steps"]
        if self.running:
            parts.append(f"{len(self.running)} running")
        parts.append(f"{format_duration(self.clock() - self.started_at)} elapsed")
        left = self.seconds_left()
        if len(self.settled) < len(self.steps):
            parts.append("time left unknown" if left is None else f"about {format_duration(left)} left")
        return ", ".join(parts)
