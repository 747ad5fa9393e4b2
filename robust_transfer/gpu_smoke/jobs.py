"""Running the GPU smoke's tool processes: dependencies, parallelism, logs, timeouts."""
from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .paths import REPO

@dataclass
class Job:
    """One tool run: a subprocess with its log, started once the jobs in ``after`` succeeded."""

    name: str
    device: str
    argv: list[str]
    env: dict[str, str]
    after: tuple[str, ...] = ()
    status: str = "pending"
    seconds: float = 0.0
    log: Path | None = field(default=None, repr=False)


def run_jobs(jobs: Sequence[Job], logs: Path, parallel: int, timeout: float) -> None:
    """Run ``jobs`` respecting ``after``, at most ``parallel`` at once; sets each job's status
    (``ok``, ``failed (exit N)``, ``timed out``, ``not run: X failed``) and seconds."""
    logs.mkdir(parents=True, exist_ok=True)
    pending, running = list(jobs), {}
    by_name = {job.name: job for job in jobs}
    while pending or running:
        for job in list(pending):
            failed = [a for a in job.after if by_name[a].status not in ("ok", "pending", "running")]
            if failed:
                job.status = f"not run: {failed[0]} failed"
                pending.remove(job)
            elif len(running) < parallel and all(by_name[a].status == "ok" for a in job.after):
                job.log = logs / f"{job.name}.log"
                handle = open(job.log, "w")
                print(f"[gpu-smoke] start {job.name}: {' '.join(job.argv)}", file=handle, flush=True)
                running[job.name] = (subprocess.Popen(job.argv, env=job.env, cwd=REPO, stdout=handle,
                                                      stderr=subprocess.STDOUT), handle, time.perf_counter())
                job.status = "running"
                pending.remove(job)
        for name, (proc, handle, start) in list(running.items()):
            job, elapsed = by_name[name], time.perf_counter() - start
            if proc.poll() is None and elapsed > timeout:
                proc.kill()
                proc.wait()
                job.status = "timed out"
            elif proc.poll() is None:
                continue
            else:
                job.status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
            job.seconds = elapsed
            handle.close()
            del running[name]
            print(f"[gpu-smoke] {job.status:>8} {name} ({elapsed:.1f} s)", file=sys.stderr, flush=True)
        if running:
            time.sleep(0.2)
