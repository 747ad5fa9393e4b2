#!/usr/bin/env python
"""Wall time of a corruption grid in the robustness tool: --corrupt-on pipeline (Corrupt in the data
pipeline, image by image, --backend torch) vs --corrupt-on batch (the collated batch corrupted on the
model's device by CorruptDataPreprocessor), same config, checkpoint, data and grid, one run.

    .venv/bin/python bench/bench_batched_corruption.py                        # detection
    .venv/bin/python bench/bench_batched_corruption.py --task segmentation --image-size 240 320
    .venv/bin/python bench/bench_batched_corruption.py --task classification --num-images 256

Set-up (not timed): a synthetic COCO (or ADE20K) validation set of ``--num-images`` images at
``--image-size`` and the tiny Mask R-CNN (or UperNet) test config with random weights saved as a
checkpoint (speed does not depend on what the model learned). The tiny configs resize to 128 px
(64 px for UperNet): both modes corrupt the native-size images, so the corruption dominates, as
it does for COCO-sized images and a real model on a GPU. Each mode runs in its own process with
``--threads`` torch/BLAS threads; printed: the process's wall time (start-up included) and the
sum of the per-cell times the tool reports (the grid alone), best of ``--repeat`` alternating
runs per mode, with the ratios pipeline / batch.
On a machine with CUDA both modes run the model there, and batch mode corrupts there.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {
    "detection": (REPO / "mmdetection" / "configs" / "tests" / "mask-rcnn_r18-tiny_fpn_synthetic-coco.py",
                  REPO / "mmdetection" / "tools" / "test_robustness.py", "mmdet"),
    "segmentation": (REPO / "mmsegmentation" / "configs" / "tiny" / "upernet_r18-tiny_1xb4-40it_synthetic-ade20k-64x80.py",
                     REPO / "mmsegmentation" / "tools" / "test_robustness.py", "mmseg"),
}
CELL_LINE = re.compile(r"^\[robustness\] (\S+): .* \(([0-9.]+) s, [0-9.]+ img/s\)$", re.M)


def _random_checkpoint(task: str, path: Path) -> None:
    import importlib

    import torch
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    config, _, scope = CONFIGS[task]
    importlib.import_module(f"robust_transfer.openmmlab.{scope}")
    models = importlib.import_module(f"{scope}.registry").MODELS
    cfg = Config.fromfile(str(config))
    with DefaultScope.overwrite_default_scope(scope):
        model = models.build(cfg.model)
    model.init_weights()
    torch.save({"state_dict": model.state_dict(), "meta": {}}, path)


def _timed(cmd: list, env: dict, cwd: Path, log: Path) -> tuple[float, float, int]:
    """(process wall time, sum of the cells' times, number of cells) of one tool run."""
    start = time.perf_counter()
    with open(log, "w") as handle:
        code = subprocess.call([str(c) for c in cmd], env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT)
    elapsed = time.perf_counter() - start
    if code != 0:
        sys.exit(f"{cmd[1]} failed ({code}); see {log}")
    cells = CELL_LINE.findall(log.read_text())
    return elapsed, sum(float(seconds) for _, seconds in cells), len(cells)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=[*sorted(CONFIGS), "classification"], default="detection")
    p.add_argument("--input-size", type=int, default=224, help="classification: the model's input size")
    p.add_argument("--corruptions", nargs="+", default=["benchmark"])
    p.add_argument("--severities", nargs="+", default=["0", "3"])
    p.add_argument("--num-images", type=int, default=8)
    p.add_argument("--image-size", type=int, nargs=2, default=[240, 320], metavar=("H", "W"))
    p.add_argument("--batch-size", type=int, default=4, help="test batch size (both modes)")
    p.add_argument("--threads", type=int, default=1, help="OMP/MKL threads per process")
    p.add_argument("--repeat", type=int, default=2, help="runs per mode (alternating); best counts")
    p.add_argument("--workdir", default=None, help="keep the files here (default: a temporary folder)")
    args = p.parse_args(argv)

    import torch

    from robust_transfer.grid import build_cells

    root = Path(args.workdir or tempfile.mkdtemp(prefix="bench_batched_")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    if args.task == "classification":
        return bench_classification(args, root)
    config, tool, _ = CONFIGS[args.task]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               PYTHONWARNINGS="ignore")
    options = [f"test_dataloader.batch_size={args.batch_size}"]
    if args.task == "detection":
        from robust_transfer.datasets.synthetic_coco import write_synthetic_coco

        data = write_synthetic_coco(root / "data", num_train=1, num_val=args.num_images,
                                    image_size=tuple(args.image_size))
        env["SYNTHETIC_COCO_ROOT"] = str(data.root)
    else:
        from robust_transfer.datasets.synthetic_ade20k import write_synthetic_ade20k

        data_root = write_synthetic_ade20k(root / "ADEChallengeData2016", num_train=1,
                                           num_val=args.num_images, image_size=tuple(args.image_size))
        options.append(f"test_dataloader.dataset.data_root={data_root}")
    checkpoint = root / "random.pth"
    with contextlib.redirect_stdout(io.StringIO()):  # mmengine's init_weights report
        _random_checkpoint(args.task, checkpoint)
    cells = build_cells(args.corruptions, args.severities)
    grid = ["--corruptions", *args.corruptions, "--severities", *args.severities]
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    print(f"{args.task}: {len(cells)} cells x {args.num_images} images of "
          f"{args.image_size[0]}x{args.image_size[1]}, test batch {args.batch_size}, "
          f"{args.threads} thread(s), {device}; files in {root}", flush=True)

    modes = {"pipeline": ["--corrupt-on", "pipeline", "--backend", "torch"],
             "batch": ["--corrupt-on", "batch"]}
    runs: dict[str, list] = {mode: [] for mode in modes}
    for repeat in range(args.repeat):  # alternating, so that load changes hit both modes alike
        for mode in (modes if repeat % 2 == 0 else list(modes)[::-1]):
            out = root / f"{mode}_{repeat}"
            wall, grid_s, count = _timed(
                [sys.executable, tool, config, checkpoint, "--out", out / "r.pkl", "--work-dir", out,
                 *grid, *modes[mode], "--cfg-options", *options], env, root, out.with_suffix(".log"))
            if count != len(cells):
                sys.exit(f"{mode}: the log has {count} cell lines, expected {len(cells)}; "
                         f"see {out.with_suffix('.log')}")
            runs[mode].append((wall, grid_s))
            print(f"{mode:8s}  wall {wall:8.1f} s   grid {grid_s:8.1f} s   "
                  f"({len(cells) * args.num_images / grid_s:.1f} img/s)", flush=True)
    pw, pg = (min(t[i] for t in runs["pipeline"]) for i in (0, 1))
    bw, bg = (min(t[i] for t in runs["batch"]) for i in (0, 1))
    print(f"best of {args.repeat}: pipeline wall {pw:.1f} s, grid {pg:.1f} s; batch wall {bw:.1f} s, "
          f"grid {bg:.1f} s")
    print(f"ratio pipeline / batch: wall {pw / bw:.2f}x, grid {pg / bg:.2f}x")
    summary = {"task": args.task, "repeat": args.repeat, "cells": len(cells), "images_per_cell": args.num_images,
               "image_size": args.image_size, "batch_size": args.batch_size, "threads": args.threads,
               "device": device, "pipeline_wall_s": pw, "pipeline_grid_s": pg, "batch_wall_s": bw,
               "batch_grid_s": bg, "wall_ratio": pw / bw, "grid_ratio": pg / bg}
    (root / "bench_batched_corruption.json").write_text(json.dumps(summary, indent=1))


def bench_classification(args, root: Path) -> None:
    """The classification evaluation on synthetic CIFAR-10 (32x32 test images, ``--input-size``
    model input, resnet_tiny fine-tuned one epoch): the per-image path (corruption and PIL
    transform in the data set, ``workers=0``) vs the batched device path, in this process."""
    import torch

    from robust_transfer.classification import TransferConfig, run_transfer
    from robust_transfer.classification.evaluation import evaluate_robustness
    from robust_transfer.classification.training import resolve_device
    from robust_transfer.datasets import load_cifar
    from robust_transfer.datasets.synthetic import write_synthetic_cifar10
    from robust_transfer.grid import build_cells

    torch.set_num_threads(args.threads)
    data = write_synthetic_cifar10(root / "cifar", num_train=64, num_test=args.num_images)
    severities = [int(s) for s in args.severities if int(s) != 0]
    config = TransferConfig(arch="resnet_tiny", data=str(data), out_dir=str(root / "out"), exp_name="bench",
                            epochs=1, batch_size=16, input_size=args.input_size, workers=0, subset=32,
                            progress=False, corruption_backend="torch", eval_batch_size=args.batch_size)
    run_transfer(config)  # fine-tune only (no corruptions asked for yet)
    config.eval_corruptions, config.severities = ",".join(args.corruptions), severities or [1]
    cells = build_cells(config.eval_corruptions, [0, *config.severities])
    test, device = load_cifar(str(data), "cifar10", train=False), resolve_device("auto")
    checkpoint = config.exp_dir / "checkpoint.pt.latest"
    print(f"classification: {len(cells)} cells x {args.num_images} CIFAR images (32x32 -> "
          f"{args.input_size}), batch {args.batch_size}, {args.threads} thread(s), {device}", flush=True)
    times: dict[str, list[float]] = {"per-image": [], "batch": []}
    cells_of: dict[str, dict] = {}
    for repeat in range(args.repeat):
        for mode in (["per-image", "batch"] if repeat % 2 == 0 else ["batch", "per-image"]):
            config.results = str(root / f"{mode}_{repeat}.json")
            start = time.perf_counter()
            path = evaluate_robustness(config, checkpoint, test, device, batched=mode == "batch")
            times[mode].append(time.perf_counter() - start)
            cells_of[mode] = json.loads(Path(path).read_text())["cells"]
            print(f"{mode:9s}  {times[mode][-1]:8.1f} s   "
                  f"({len(cells) * args.num_images / times[mode][-1]:.1f} img/s)", flush=True)
    best = {mode: min(t) for mode, t in times.items()}
    print(f"best of {args.repeat}: per-image {best['per-image']:.1f} s, batch {best['batch']:.1f} s; "
          f"ratio per-image / batch {best['per-image'] / best['batch']:.2f}x; same accuracies: "
          f"{cells_of['per-image'] == cells_of['batch']}")
    (root / "bench_batched_corruption.json").write_text(json.dumps(
        {"task": "classification", "cells": len(cells), "images_per_cell": args.num_images,
         "input_size": args.input_size, "batch_size": args.batch_size, "threads": args.threads,
         "device": str(device), "per_image_s": best["per-image"], "batch_s": best["batch"],
         "ratio": best["per-image"] / best["batch"], "repeat": args.repeat}, indent=1))


if __name__ == "__main__":
    main()
