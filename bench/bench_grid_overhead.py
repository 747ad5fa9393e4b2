#!/usr/bin/env python
"""Who sets the pace of a robustness grid: images/s of the whole grid tool against model-only
inference on the same data, model, batch size and precision, measured side by side in one run.

    .venv/bin/python bench/bench_grid_overhead.py                          # CPU, tiny model
    .venv/bin/python bench/bench_grid_overhead.py --device cuda --batch-size 8 --amp --json out.json

Set-up (not timed): a synthetic COCO validation set (robust_transfer.datasets.synthetic_coco) and
the tiny Mask R-CNN of mmdetection/configs/tests/ with random weights saved as a checkpoint
(speed does not depend on what the model learned).

(a) model-only: this process builds the model, runs the test pipeline and the data preprocessor
    over every image once, keeps the normalised batches, then times ``model.predict`` over them
    (``--batch-size`` images per batch, autocast with ``--amp``), once per grid cell.
(b) grid: mmdetection/tools/test_robustness.py over the same cells in a child process. Its
    images/s is counted over the cells' own times (the tool prints each: loading, corrupting,
    the model, and scoring the cell), so start-up (imports, building the model and the data set)
    is left out; the wall time of the whole process is printed too.

Overhead = grid seconds per image / model-only seconds per image - 1: what corruption, data
loading and scoring add to the model. The goal of under 10 % is for a GPU (with
``--corrupt-on batch``, workers loading ahead); it is not measured on a CPU-only machine, where
the corruptions compete with the model for the same cores and the ratio says little about it.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "mmdetection" / "configs" / "tests" / "mask-rcnn_r18-tiny_fpn_synthetic-coco.py"
TOOL = REPO / "mmdetection" / "tools" / "test_robustness.py"
CELL_LINE = re.compile(r"^\[robustness\] \S+: .*\(([0-9.]+) s, [0-9.]+ img/s\)$", re.MULTILINE)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="where the model runs (cpu hides the GPU from the grid tool); default cpu")
    p.add_argument("--batch-size", type=int, default=8, help="images per batch in both; default 8")
    p.add_argument("--amp", action="store_true",
                   help="mixed precision (autocast) in both; needs --device cuda")
    p.add_argument("--corruptions", nargs="+", default=["gaussian_noise", "motion_blur", "fog",
                                                         "jpeg_compression"],
                   help="the grid's corruptions (with --severities: its cells); default 4 of them")
    p.add_argument("--severities", nargs="+", default=["3"], help="the grid's severities; default 3")
    p.add_argument("--corrupt-on", choices=["auto", "pipeline", "batch"], default="auto",
                   help="passed to the grid tool (auto: batch on CUDA, pipeline on the CPU)")
    p.add_argument("--workers", type=int, default=0,
                   help="the grid tool's data-loader workers (model-only preloads); default 0")
    p.add_argument("--num-images", type=int, default=32, help="validation images; default 32")
    p.add_argument("--threads", type=int, default=1,
                   help="torch/BLAS threads of both processes (the CPU's work); default 1")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the numbers here")
    p.add_argument("--workdir", default=None, help="keep the files here (default: a temporary folder)")
    return p.parse_args(argv)


def random_checkpoint(path: Path, cfg) -> None:
    """The tiny model with its initial (random) weights, saved as a checkpoint."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope("mmdet"):
        model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save({"state_dict": model.state_dict(), "meta": {}}, path)


def preloaded_batches(cfg, model, batch_size: int) -> list[dict]:
    """Every test image through the test pipeline and the data preprocessor, once: the
    normalised batches model-only inference runs on."""
    import torch
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope("mmdet"):
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
    items = [dataset[i] for i in range(len(dataset))]
    batches = []
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            batches.append(model.data_preprocessor(pseudo_collate(items[start:start + batch_size]), False))
    return batches


def time_model_only(model, batches: list[dict], passes: int, device: str, amp: bool) -> float:
    """Seconds of ``passes`` passes of ``model.predict`` over the batches (one untimed warm-up)."""
    import torch
    from mmengine.runner.amp import autocast

    def one_pass() -> None:
        for data in batches:
            with torch.no_grad(), autocast(enabled=amp):
                model(data["inputs"], data["data_samples"], mode="predict")
        if device == "cuda":
            torch.cuda.synchronize()

    one_pass()
    start = time.perf_counter()
    for _ in range(passes):
        one_pass()
    return time.perf_counter() - start


def run_grid_tool(args, root: Path, checkpoint: Path, env: dict) -> tuple[list[float], float]:
    """The grid tool in a child process: (each cell's seconds as it prints them, wall seconds)."""
    cmd = [sys.executable, TOOL, TINY_CONFIG, checkpoint, "--corruptions", *args.corruptions,
           "--severities", *args.severities, "--batch-size", str(args.batch_size),
           "--workers", str(args.workers), "--corrupt-on", args.corrupt_on,
           "--work-dir", root / "grid", "--final-prints", "P"] + (["--amp"] if args.amp else [])
    log = root / "grid.log"
    start = time.perf_counter()
    with open(log, "w") as handle:
        code = subprocess.call([str(c) for c in cmd], env=env, cwd=root, stdout=handle,
                               stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    if code != 0:
        sys.exit(f"the grid tool failed ({code}); see {log}")
    return [float(s) for s in CELL_LINE.findall(log.read_text())], wall


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.amp and args.device != "cuda":
        sys.exit("--amp needs --device cuda (the grid tool refuses autocast on the CPU)")
    root = Path(args.workdir or tempfile.mkdtemp(prefix="bench_grid_")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    from robust_transfer.datasets.synthetic_coco import write_synthetic_coco

    data = write_synthetic_coco(root / "data", num_train=1, num_val=args.num_images)
    threads = str(args.threads)
    env = dict(os.environ, SYNTHETIC_COCO_ROOT=str(data.root), OMP_NUM_THREADS=threads,
               MKL_NUM_THREADS=threads, PYTHONWARNINGS="ignore")
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    os.environ["SYNTHETIC_COCO_ROOT"] = str(data.root)  # the config reads it

    import torch
    from mmdet.apis import init_detector
    from mmengine.config import Config

    import robust_transfer.openmmlab.mmdet  # noqa: F401  (the plugin the config imports)
    torch.set_num_threads(args.threads)
    cfg = Config.fromfile(str(TINY_CONFIG))
    checkpoint = root / "random.pth"
    random_checkpoint(checkpoint, cfg)
    model = init_detector(cfg, str(checkpoint), device=args.device)
    batches = preloaded_batches(cfg, model, args.batch_size)
    load_start = os.getloadavg()

    cells, grid_wall = run_grid_tool(args, root, checkpoint, env)
    model_seconds = time_model_only(model, batches, len(cells), args.device, args.amp)
    images = args.num_images * len(cells)
    grid_seconds = sum(cells)
    report = {
        "date": time.strftime("%Y-%m-%d"), "device": args.device, "batch_size": args.batch_size,
        "amp": args.amp, "corrupt_on": args.corrupt_on, "threads": args.threads,
        "cells": len(cells), "images_per_cell": args.num_images,
        "model_only_img_per_s": images / model_seconds, "grid_img_per_s": images / grid_seconds,
        "grid_wall_img_per_s": images / grid_wall,
        "overhead": grid_seconds / model_seconds - 1.0,
        "load_average": {"start": load_start[0], "end": os.getloadavg()[0]},
    }
    print(f"{len(cells)} cell(s) x {args.num_images} images, batch {args.batch_size}, "
          f"amp {args.amp}, {args.device}, {args.threads} thread(s)")
    print(f"model only : {report['model_only_img_per_s']:8.1f} img/s")
    print(f"grid (cells): {report['grid_img_per_s']:8.1f} img/s   "
          f"(whole process incl. start-up: {report['grid_wall_img_per_s']:.1f} img/s)")
    print(f"overhead of corruption + loading + scoring: {100 * report['overhead']:.0f} % "
          f"(grid time / model time = {grid_seconds / model_seconds:.2f}); load average "
          f"{load_start[0]:.2f} -> {report['load_average']['end']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
