"""The GPU smoke's summary: timing table, tolerances, checks and verdict; ``summary.json``."""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from .compare import TOLERANCES, Check, largest_differences
from .devices import device_name


def report(args: argparse.Namespace, timings, checks: Sequence[Check], total: float) -> None:
    """Print the timing table, the tolerances, every check and the verdict; write summary.json."""
    from ..report import terminal_table

    rows = [[name, device, f"{seconds:.1f}", status] for name, device, seconds, status in timings]
    rows.append(["total", "-", f"{total:.1f}", ""])
    print(terminal_table(["stage", "device", "wall s", "status"], rows, " gpu smoke timings "))
    largest = largest_differences(checks)
    print(f"tolerances (|{args.device} - {args.reference_device}| per cell; why: robust_transfer/gpu_smoke/compare.py):")
    for tol in TOLERANCES.values():
        seen = f"{largest[tol.metric]:.4f}" if tol.metric in largest else "n/a"
        print(f"  {tol.metric:9} <= {tol.max_abs_diff:<5g} largest seen {seen:>7}  ({tol.why})")
    for check in checks:
        print(check.line())
    failed = [c for c in checks if not c.passed]
    verdict = "PASS" if checks and not failed else "FAIL"
    print(f"gpu smoke: {verdict}: {len(checks) - len(failed)}/{len(checks)} checks passed, "
          f"{args.device} vs {args.reference_device}, {total:.1f} s; logs in {Path(args.out) / 'logs'}")
    summary = {"verdict": verdict, "device": args.device, "reference_device": args.reference_device,
               "device_name": device_name(args.device), "total_seconds": round(total, 2),
               "timings": [dict(stage=n, device=d, seconds=round(s, 2), status=st) for n, d, s, st in timings],
               "tolerances": {k: asdict(v) for k, v in TOLERANCES.items()}, "largest_differences": largest,
               "checks": [asdict(c) for c in checks], "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=1))
