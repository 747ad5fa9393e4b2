#!/usr/bin/env python
"""Wall time of a corruption grid: our mmdetection/tools/test_robustness.py vs mmdet's own
tools/analysis_tools/test_robustness.py, side by side on the same config, checkpoint and data.

    .venv/bin/python bench/bench_mmdet_robustness.py                       # benchmark x 0..5
    .venv/bin/python bench/bench_mmdet_robustness.py --corruptions noise --severities 0 1 2

Set-up (not timed): a synthetic COCO validation set (robust_transfer.datasets.synthetic_coco)
and the tiny Mask R-CNN of mmdetection/configs/tests/ with random weights saved as a checkpoint
(speed does not depend on what the model learned). Each tool then runs in its own process with
one BLAS thread; the time is the process's wall time, start-up included. mmdet's tool runs
through tests/_run_mmdet_tool.py (imagecorruptions made to work on numpy 2; checkpoint loading
allowed under torch's weights_only default) with a config that does not import our plugin, so it
uses mmdet's own Corrupt (imagecorruptions).

Where the difference comes from: the corruption library (e.g. glass_blur, zoom_blur are many
times faster than imagecorruptions' loops) and building the test dataset once instead of once
per cell. Both tools build the model and load the checkpoint once (mmdet 3.3.0's tool does too).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "mmdetection" / "configs" / "tests" / "mask-rcnn_r18-tiny_fpn_synthetic-coco.py"


def _random_checkpoint(path: Path) -> None:
    import torch

    import robust_transfer.openmmlab.mmdet  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    cfg = Config.fromfile(str(TINY_CONFIG))
    with DefaultScope.overwrite_default_scope("mmdet"):
        model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save({"state_dict": model.state_dict(), "meta": {}}, path)


def _timed(cmd: list, env: dict, cwd: Path, log: Path) -> float:
    start = time.perf_counter()
    with open(log, "w") as handle:
        code = subprocess.call([str(c) for c in cmd], env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT)
    elapsed = time.perf_counter() - start
    if code != 0:
        sys.exit(f"{cmd[1]} failed ({code}); see {log}")
    return elapsed


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corruptions", nargs="+", default=["benchmark"])
    p.add_argument("--severities", nargs="+", default=["0", "1", "2", "3", "4", "5"])
    p.add_argument("--num-images", type=int, default=8)
    p.add_argument("--image-size", type=int, nargs=2, default=[96, 128], metavar=("H", "W"))
    p.add_argument("--workdir", default=None, help="keep the files here (default: a temporary folder)")
    args = p.parse_args(argv)

    from robust_transfer.datasets.synthetic_coco import write_synthetic_coco
    from robust_transfer.grid import build_cells

    root = Path(args.workdir or tempfile.mkdtemp(prefix="bench_mmdet_")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    data = write_synthetic_coco(root / "data", num_train=1, num_val=args.num_images,
                                image_size=tuple(args.image_size))
    checkpoint = root / "random.pth"
    _random_checkpoint(checkpoint)
    mmdet_config = root / "mmdet_tool_config.py"
    mmdet_config.write_text(f"_base_ = {str(TINY_CONFIG)!r}\ncustom_imports = dict(imports=[])\n"
                            "model = dict(backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained', "
                            "checkpoint='unused')))\n")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore",
               SYNTHETIC_COCO_ROOT=str(data.root))
    corruptions = [c if c.lower() != "none" else "None" for c in args.corruptions]
    cells = build_cells(None if corruptions == ["None"] else corruptions, args.severities)
    grid = ["--corruptions", *corruptions, "--severities", *args.severities]
    print(f"grid: {len(cells)} cells x {args.num_images} images of {args.image_size[0]}x{args.image_size[1]}; "
          f"files in {root}", flush=True)

    ours = _timed([sys.executable, REPO / "mmdetection" / "tools" / "test_robustness.py", TINY_CONFIG,
                   checkpoint, "--out", root / "ours" / "r.pkl", "--work-dir", root / "work_ours", *grid],
                  env, root, root / "ours.log")
    print(f"ours:  {ours:8.1f} s", flush=True)
    theirs = _timed([sys.executable, REPO / "tests" / "_run_mmdet_tool.py", "analysis_tools/test_robustness.py",
                     mmdet_config, checkpoint, "--out", root / "mmdet" / "m.pkl",
                     "--work-dir", root / "work_mmdet", *grid], env, root, root / "mmdet.log")
    print(f"mmdet: {theirs:8.1f} s", flush=True)
    print(f"ratio (mmdet / ours): {theirs / ours:.2f}x")
    summary = {"cells": len(cells), "images_per_cell": args.num_images, "ours_s": ours,
               "mmdet_s": theirs, "ratio": theirs / ours}
    (root / "bench_mmdet_robustness.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
