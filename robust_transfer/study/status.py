"""``robust-transfer status SUITE``: which steps of a suite's plan are done, stale (done, but an
input changed since: :mod:`.fingerprint`) or pending, and why."""
from __future__ import annotations

import sys

from .layout import rel
from .options import Options
from .planning import build_plan
from .fingerprint import step_states
from .suite import load_suite


def suite_status(suite_path, options: Options, file=None) -> int:
    """Print every step of the plan of ``suite_path`` with its state and why; returns 0 (the
    counts are on the last line)."""
    file = file or sys.stdout
    plan = build_plan(load_suite(suite_path, smoke=options.smoke), options)
    states = step_states(plan.steps, plan.fingerprints)
    print(f"# suite {plan.suite.name}: {len(plan.steps)} steps; work dir {rel(plan.work_dir)}",
          file=file)
    width = max((len(s.id) for s, _, _ in states), default=0)
    for step, state, why in states:
        print(f"{state:8s} {step.id:{width}s}" + (f"  {why}" if why else ""), file=file)
    counts = {name: sum(1 for _, s, _ in states if s == name) for name in ("done", "stale", "pending")}
    print(", ".join(f"{n} {name}" for name, n in counts.items()) +
          ("; a rerun of reproduce redoes the stale steps and what depends on them"
           if counts["stale"] else ""), file=file)
    return 0
