"""The pace of a robustness grid: test batch size, data-loader workers and mixed precision.

mmdet's own ``test_robustness.py`` tests one image at a time; a GPU then mostly waits. The
robustness tools of both frameworks take ``--batch-size``, ``--workers`` and ``--amp`` from
:func:`add_pace_flags`; :func:`apply_pace` writes them into the config every cell's dataloader is
built from (``--corrupt-on pipeline`` rebuilds the loader per cell from that config,
``--corrupt-on batch`` keeps it), and :func:`pace_extra` records them in the results' ``extra``.

Batch size does not enter a cell's identity (corruption, severity, seed): each image's corruption
draws are keyed by the image's file name, never by its position in a batch, so the corrupted
pixels are the same for every batch size. What a batch may change is the model's arithmetic:
mmdet pads the images of a batch to a common size (see :data:`BATCH_TOLERANCE_HELP`).
"""
from __future__ import annotations

import argparse
from typing import Any

from .runner import enable_test_amp

# Why batch 8 and batch 1 may differ, and by how much (measured by tests/test_grid_batching.py on
# the tiny synthetic Mask R-CNN; the measurement is quoted in docs/corruptions.md, "Grid pace").
BATCH_TOLERANCE = 0.01
BATCH_TOLERANCE_HELP = (
    "Images of one size are not padded (only float summation order can differ). Detection "
    "batches of mixed sizes are padded (bottom/right, zeros after normalisation) to the largest "
    "image, rounded up to the preprocessor's pad_size_divisor: convolutions near the padded border "
    "and the RPN's anchors see a larger canvas, so boxes can move slightly (mmdet's docs say so of "
    "batch inference). Stated tolerance: the clean cell of batch 8 is within "
    f"{BATCH_TOLERANCE:g} (absolute, metrics in 0..1, i.e. 1 AP point) of batch 1; measured on the "
    "tiny test Mask R-CNN over 4 landscape + 4 portrait images: at most 0.005 (bbox AP50), "
    "0.001 bbox AP, 0.002 mask AP (with 8 images, one moved box weighs a lot)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_pace_flags(parser: argparse.ArgumentParser) -> None:
    """``--batch-size``, ``--workers`` and ``--amp`` of the robustness tools."""
    group = parser.add_argument_group("pace (how fast the grid runs; not part of a cell's identity)")
    group.add_argument("--batch-size", type=_positive_int, default=None, metavar="N",
                       help="images per test batch in every cell (default: the config's "
                       "test_dataloader.batch_size; mmdet's own tool uses 1); works with both "
                       "--corrupt-on modes and is recorded in the results (extra.batch_size). "
                       "Corrupted pixels do not depend on it (draws are keyed by image). "
                       + BATCH_TOLERANCE_HELP)
    group.add_argument("--workers", type=_non_negative_int, default=None, metavar="N",
                       help="data-loader worker processes per cell (default: the config's "
                       "test_dataloader.num_workers); 0 loads (and, with --corrupt-on pipeline, "
                       "corrupts) in the main process")
    group.add_argument("--amp", action="store_true",
                       help="mixed-precision inference: mmengine's autocast around each test step "
                       "(the test loop's fp16 flag: float16 on CUDA), the same autocast --amp of "
                       "the train tools trains under; scores can move slightly against float32. "
                       "Needs a CUDA GPU. Recorded in the results (extra.amp)")


def apply_pace(cfg: Any, args: argparse.Namespace) -> None:
    """Write ``--batch-size``, ``--workers`` and ``--amp`` into ``cfg`` (``ValueError`` for
    ``--amp`` without CUDA or with a test loop that cannot take it)."""
    loader = cfg.test_dataloader
    if getattr(args, "batch_size", None) is not None:
        loader["batch_size"] = int(args.batch_size)
    if getattr(args, "workers", None) is not None:
        loader["num_workers"] = int(args.workers)
        if int(args.workers) == 0:  # torch refuses persistent workers without workers
            loader["persistent_workers"] = False
    if getattr(args, "amp", False):
        import torch

        if not torch.cuda.is_available():
            # autocast on the CPU means bfloat16, and mmcv's CPU ops (nms, RoIAlign) take only
            # float32: detection would fail in the first cell, after the model is built
            raise ValueError("--amp needs a CUDA GPU (on the CPU autocast runs in bfloat16, "
                             "which mmcv's CPU ops such as nms refuse)")
        enable_test_amp(cfg)


def pace_extra(cfg: Any, args: argparse.Namespace) -> dict:
    """What the results' ``extra`` records of the pace: batch size, workers and amp in effect."""
    loader = cfg.test_dataloader
    return {"batch_size": int(loader.get("batch_size", 1)),
            "workers": int(loader.get("num_workers", 0)),
            "amp": bool(getattr(args, "amp", False))}
