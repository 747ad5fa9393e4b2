"""The GPU smoke's command line: parse, skip without CUDA, run the stages, check, summarise."""
from __future__ import annotations

import argparse
import os
import re
import shutil
import time
from pathlib import Path
from typing import Sequence

from .compare import Check, result_checks
from .devices import check_mmcv_cuda_ops, cuda_skip_reason
from .jobs import run_jobs
from .stages import plan_jobs, write_data
from .summary import report

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m robust_transfer.gpu_smoke", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Train the tiny detection, segmentation and classification models on a GPU, "
        "evaluate them under corruptions with the tools (--corrupt-on pipeline and batch) on the "
        "GPU and on the CPU, compare the numbers within stated tolerances and print the timings. "
        "Exit status 1 on any failure; without CUDA it prints that it skipped and exits 0.")
    parser.add_argument("--out", required=True, help="folder for data, checkpoints, results, logs "
                        "and summary.json (its data/, train/, eval/ and logs/ are rewritten)")
    parser.add_argument("--device", default="cuda", help="device the models are trained and first "
                        "evaluated on: cuda, cuda:N, or cpu (then everything runs on the CPU: a test "
                        "of the smoke itself)")
    parser.add_argument("--reference-device", default="cpu", help="device the same checkpoints are "
                        "evaluated on again for the comparison")
    parser.add_argument("--iters", type=int, default=100, help="training iterations of the detection "
                        "and segmentation models (100: box AP about 0.3, ten times its tolerance, "
                        "measured on the CPU)")
    parser.add_argument("--cls-epochs", type=int, default=8, help="training epochs of the classifier "
                        "(256 images, batch 32)")
    parser.add_argument("--min-clean-scale", type=float, default=1.0, help="factor on the clean "
                        "values the device-trained models must reach (MIN_CLEAN: box AP 0.1, mIoU 30, "
                        "top-1 50); 0 only asks for a value above 0 (quick runs with few iterations)")
    parser.add_argument("--corruptions", nargs="+", default=["gaussian_noise", "defocus_blur", "contrast"],
                        metavar="NAME", help="corruptions evaluated besides the clean cell")
    parser.add_argument("--severity", type=int, default=3, choices=range(1, 6), metavar="{1..5}",
                        help="the one severity evaluated")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, the trainings and the "
                        "corruptions")
    parser.add_argument("--jobs", type=int, default=min(6, max(1, (os.cpu_count() or 2) // 2)),
                        help="tool processes run at once")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one tool may run")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the smoke; 0 when every check passed (or CUDA is absent), 1 otherwise."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.iters < 1 or args.cls_epochs < 1 or args.jobs < 1:
        parser.error("--iters, --cls-epochs and --jobs must be at least 1")
    for flag, device in (("--device", args.device), ("--reference-device", args.reference_device)):
        if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
            parser.error(f"{flag} {device!r}: expected cpu, cuda or cuda:N")
    from ..corruptions import resolve_corruptions

    try:
        args.corruptions = resolve_corruptions(args.corruptions)
    except ValueError as error:
        parser.error(f"--corruptions: {error}")
    skip = cuda_skip_reason(args.device, args.reference_device)
    if skip is not None:
        print(f"gpu smoke: skipped: {skip}")
        return 0
    total_start = time.perf_counter()
    out = Path(args.out).resolve()
    args.out = str(out)
    for part in ("data", "train", "eval", "logs"):
        shutil.rmtree(out / part, ignore_errors=True)
    timings: list[tuple[str, str, float, str]] = []
    start = time.perf_counter()
    data = write_data(out, args.seed)
    timings.append(("write synthetic data", "-", time.perf_counter() - start, "ok"))
    checks: list[Check] = []
    for device in dict.fromkeys((args.device, args.reference_device)):
        if device.startswith("cuda"):
            start = time.perf_counter()
            checks.append(check_mmcv_cuda_ops(device))
            timings.append(("mmcv CUDA ops", device, time.perf_counter() - start,
                            "ok" if checks[-1].passed else "failed"))
    jobs = []
    if all(c.passed for c in checks):
        threads = max(1, (os.cpu_count() or 2) // args.jobs)
        jobs = plan_jobs(args, data, threads)
        run_jobs(jobs, out / "logs", args.jobs, args.timeout)
        for job in jobs:
            timings.append((job.name, job.device, job.seconds, job.status))
            checks.append(Check(f"tool {job.name}", job.status == "ok",
                                job.status + (f" (log: {job.log})" if job.log else "")))
        checks += result_checks(args)
    total = time.perf_counter() - total_start
    report(args, timings, checks, total)
    return 0 if checks and all(c.passed for c in checks) else 1
