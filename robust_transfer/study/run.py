"""Plan a suite and print the plan (``--dry-run``) or execute it, after the preflight.

Idempotent: a conversion whose output exists, a training whose final checkpoint exists and an
evaluation whose results file holds every cell are skipped; an interrupted training resumes
from its last checkpoint and an interrupted evaluation from its last finished cell. Before
anything runs, the preflight (:meth:`~.steps.Plan.missing_inputs`) lists every data set and
checkpoint the commands still to run read that neither exists nor is written by an earlier step.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Mapping

from .executor import Executor
from .gpu_slots import GpuSlots, Placement, node_gpu_ids, simulate_placements
from .layout import REPO, rel
from .options import Options
from .planning import build_plan
from .steps import Plan, missing_message
from .suite import SuiteError, load_suite


def run_suite(suite_path: str | Path, options: Options) -> int:
    """Plan ``suite_path`` with ``options``; print the plan (``options.dry_run``) or execute it.
    Returns the exit status (0: every step done). ``options.stream_report=False`` sends the
    report's terminal output to its log file like the other commands' (the demo prints its own
    tables)."""
    suite = load_suite(suite_path, smoke=options.smoke)
    plan = build_plan(suite, options)
    if not options.stream_report:
        for step in plan.steps:
            step.stream = False
    # with --gpus, as many commands at once as the node has GPUs (each GPU step holds its own)
    jobs = options.jobs or (options.gpus if options.gpus and options.launcher != "slurm"
                            else int(suite.run.jobs))
    slots = _node_slots(options)
    missing = plan.missing_inputs()
    if options.dry_run:
        placements = {}
        if slots is not None:
            placements = simulate_placements(plan.steps, slots, jobs, lambda s: s.is_done())
        print_plan(plan, placements=placements)
        if missing:
            print("\n# warning: " + missing_message(missing).replace("\n", "\n# "))
        return 0
    for note in plan.notes:
        print(f"[reproduce] note: {note}", file=sys.stderr)
    if missing:
        raise SuiteError(missing_message(missing))
    return _execute(plan, options, jobs, slots)


def _execute(plan: Plan, options: Options, jobs: int, slots: GpuSlots | None) -> int:
    run = plan.suite.run
    executor = options.executor or run.executor
    threads, log_dir = options.threads, options.log_dir
    if threads is None and jobs > 1:
        threads = int(run.threads) if run.threads else max(1, (os.cpu_count() or 1) // jobs)
    if log_dir is None and jobs > 1:
        log_dir = str(plan.work_dir / "logs")
    start = time.perf_counter()
    print(f"[reproduce] suite {plan.suite.name}: {len(plan.steps)} steps, executor {executor}, "
          f"{jobs} at a time; work dir {rel(plan.work_dir)}", file=sys.stderr, flush=True)
    code = Executor(plan, mode=executor, jobs=jobs, log_dir=Path(log_dir) if log_dir else None,
                    threads=threads, slots=slots).run()
    print(f"[reproduce] {'finished' if code == 0 else 'finished with failures'} in "
          f"{time.perf_counter() - start:.0f} s; report: {rel(plan.report_dir)} "
          f"(html: {rel(plan.report_dir / 'report.html')})",
          file=sys.stderr, flush=True)
    return code


def print_plan(plan: Plan, file=None, placements: Mapping[str, Placement] | None = None) -> None:
    """Every command of the plan, in order, with its state (``done`` = would be skipped), as
    runnable shell lines from the repository root; with ``placements`` ({step id: placement}),
    each step's GPU ids and master port."""
    file = file or sys.stdout
    placements = placements or {}
    python = rel(sys.executable) if Path(sys.executable).is_relative_to(REPO) else sys.executable
    print(f"# suite {plan.suite.name}: {plan.suite.title}", file=file)
    print(f"# {len(plan.steps)} steps; work dir {rel(plan.work_dir)}; report {rel(plan.report_dir)}; "
          f"commands run from {REPO}", file=file)
    if placements:
        print("# GPUs and ports: as handed out if the steps ran in this order and took equally "
              "long (at run time a step takes the first free ones)", file=file)
    for note in plan.notes:
        print(f"# note: {note}", file=file)
    for number, step in enumerate(plan.steps, 1):
        state = "done, skipped" if step.is_done() else \
            "stale: an input changed, to run again" if step.done and step.done() else "to run"
        placement = placements.get(step.id)
        where = ""
        if placement is not None:
            where = f"; GPU {','.join(placement.gpus)}" + \
                (f", port {placement.port}" if placement.port is not None else "")
        print(f"\n# [{number}/{len(plan.steps)}] {step.title} ({state}{where})", file=file)
        print(step.shell(python, placement.env() if placement is not None else None), file=file)


def _node_slots(options: Options) -> GpuSlots | None:
    """The node's GPUs and ports for the executor: with ``--gpus`` and a local launcher (none,
    pytorch); None otherwise (no --gpus: CUDA_VISIBLE_DEVICES is left alone; Slurm: srun
    allocates)."""
    if not options.gpus or options.launcher == "slurm":
        return None
    try:
        return GpuSlots(node_gpu_ids(options.gpus), options.base_port)
    except ValueError as error:
        raise SuiteError(str(error)) from None
