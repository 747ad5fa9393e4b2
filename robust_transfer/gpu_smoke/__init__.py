"""One GPU smoke run: the three tasks trained and evaluated on a GPU, checked against the CPU.

    python -m robust_transfer.gpu_smoke --out outputs/gpu_smoke            # on a CUDA machine
    bash scripts/gpu_smoke.sh [--wheels DIR]                              # set-up, then this

What it does, as a user would (every tool is a subprocess, its log in ``<out>/logs/``):

1. writes the synthetic data sets (COCO, ADE20K, CIFAR-10; ``robust_transfer.datasets``);
2. on CUDA, checks that mmcv has its CUDA ops (nms and RoIAlign on the GPU);
3. trains the tiny Mask R-CNN (``mmdetection/tools/train.py``), the tiny UperNet
   (``mmsegmentation/tools/train.py``) and the tiny CIFAR ResNet
   (``robust-models-transfer/src/main.py``) for a few iterations on ``--device``;
4. evaluates those checkpoints with ``tools/test_robustness.py`` of both frameworks in
   ``--corrupt-on pipeline`` (numpy backend) and ``--corrupt-on batch`` (torch backend) mode,
   and the classifier with its batched on-device corruption path, on the clean cell and a few
   corruptions at one severity -- once on ``--device`` and once on ``--reference-device``;
5. compares every cell's metrics between the two devices, prints the timings and one
   PASS/FAIL line per check, writes ``<out>/summary.json``; the exit status is 1 when any
   tool failed, a check failed or mmcv lacks its CUDA ops.

On a CUDA device the detection and segmentation batch-mode runs pass no ``--corrupt-on`` flag:
the tools' GPU default (batch, torch backend) is what is checked there.

The package: :mod:`.paths` (tools and configs), :mod:`.devices`, :mod:`.stages` (the
data and the tool commands), :mod:`.jobs` (running them), :mod:`.compare` (tolerances and
checks), :mod:`.summary` (timings and verdict), :mod:`.cli` (the command line).
"""
from __future__ import annotations

from .cli import main

__all__ = ["main"]
