"""The GPU smoke's stages: the synthetic data, then the training and evaluation commands."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Mapping

from .compare import MODES
from .devices import device_env
from .jobs import Job
from .paths import CLS_MAIN, DET_CONFIG, DET_TOOLS, SEG_CONFIG, SEG_TOOLS

#: test images per task (val/test split of the synthetic data sets)
NUM_IMAGES = {"detection": 8, "segmentation": 4, "classification": 40}


def plan_jobs(args: argparse.Namespace, data: Mapping[str, Path], threads: int) -> list[Job]:
    """The trainings on ``--device`` and the evaluations on both devices."""
    out, python, device, seed = Path(args.out), sys.executable, args.device, str(args.seed)
    base = dict(os.environ, SYNTHETIC_COCO_ROOT=str(data["coco"]))
    train_env = device_env(device, base, threads)
    seg_data = [f"{split}_dataloader.dataset.data_root={data['ade20k']}" for split in ("train", "val", "test")]
    iters = [f"train_cfg.max_iters={args.iters}", f"default_hooks.checkpoint.interval={args.iters}",
             f"randomness.seed={seed}"]
    jobs = [
        Job("train-detection", device, [python, str(DET_TOOLS / "train.py"), str(DET_CONFIG), "--work-dir",
                                str(out / "train" / "detection"), "--cfg-options", *iters, "val_cfg=None",
                                "val_dataloader=None", "val_evaluator=None"], train_env),
        Job("train-segmentation", device, [python, str(SEG_TOOLS / "train.py"), str(SEG_CONFIG), "--work-dir",
                                   str(out / "train" / "segmentation"), "--cfg-options", *iters,
                                   f"train_cfg.val_interval={args.iters}", f"param_scheduler.0.end={args.iters}",
                                   *seg_data], train_env),
        Job("train-classification", device, [python, str(CLS_MAIN), *classification_args(args, data), "--epochs",
                                     str(args.cls_epochs), "--device", _cls_device(device)], train_env),
    ]
    # both evaluations always run, also when the devices are the same (the smoke's own test)
    for tag, run_device in (("device", device), ("reference", args.reference_device)):
        env = device_env(run_device, base, threads)
        for task, tools, config, extra in (("detection", DET_TOOLS, DET_CONFIG, []),
                                           ("segmentation", SEG_TOOLS, SEG_CONFIG, seg_data)):
            checkpoint = out / "train" / task / f"iter_{args.iters}.pth"
            for mode in MODES:
                if mode == "pipeline":
                    flags = ["--corrupt-on", "pipeline", "--backend", "numpy"]
                else:  # on CUDA the tools' default is batch mode: check that default
                    flags = [] if run_device.startswith("cuda") else ["--corrupt-on", "batch"]
                result = out / "eval" / tag / f"{task}_{mode}.pkl"
                jobs.append(Job(f"eval-{task}-{mode}-{tag}", run_device, [
                    python, str(tools / "test_robustness.py"), str(config), str(checkpoint),
                    "--out", str(result), "--corruptions", *args.corruptions, "--severities", "0",
                    str(args.severity), "--seed", seed, *flags, "--work-dir", str(result.parent / f"{task}_{mode}"),
                    "--cfg-options", "default_hooks.runtime_info=None", *extra], env, (f"train-{task}",)))
        jobs.append(Job(f"eval-classification-{tag}", run_device, [
            python, str(CLS_MAIN), *classification_args(args, data), "--eval-only", "1",
            "--eval-corruptions", ",".join(args.corruptions), "--severities", str(args.severity),
            "--corruption-backend", "torch", "--eval-subset", str(NUM_IMAGES["classification"]),
            "--eval-batch-size", "20", "--device", _cls_device(run_device),
            "--results", str(out / "eval" / tag / "classification.json")], env, ("train-classification",)))
    return jobs


def _cls_device(device: str) -> str:
    return "cpu" if device == "cpu" else "cuda"  # cuda:N is mapped by CUDA_VISIBLE_DEVICES


def classification_args(args: argparse.Namespace, data: Mapping[str, Path]) -> list[str]:
    return ["--arch", "resnet_tiny", "--dataset", "cifar10", "--data", str(data["cifar"]),
            "--out-dir", str(Path(args.out) / "train"), "--exp-name", "classification",
            "--input-size", "32", "--batch-size", "32", "--lr", "0.05",
            "--workers", "0", "--no-tqdm", "1", "--log-iters", str(args.cls_epochs), "--seed", str(args.seed)]


def write_data(out: Path, seed: int) -> dict[str, Path]:
    """The three synthetic data sets under ``out/data`` (deterministic in ``seed``)."""
    from ..datasets.synthetic import write_synthetic_cifar10
    from ..datasets.synthetic_ade20k import write_synthetic_ade20k
    from ..datasets.synthetic_coco import write_synthetic_coco

    root = out / "data"
    coco = write_synthetic_coco(root / "coco", num_train=16, num_val=NUM_IMAGES["detection"],
                                image_size=(96, 128), seed=seed)
    ade = write_synthetic_ade20k(root / "ADEChallengeData2016", num_train=8,
                                 num_val=NUM_IMAGES["segmentation"], seed=seed)
    cifar = write_synthetic_cifar10(root / "cifar", num_train=256, num_test=NUM_IMAGES["classification"],
                                    seed=seed)
    return {"coco": coco.root, "ade20k": Path(ade), "cifar": Path(cifar)}
