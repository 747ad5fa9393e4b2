"""``train`` and ``test`` entry points for the OpenMMLab tools (mmdet's and mmseg's
``tools/train.py`` / ``tools/test.py`` flags), on mmengine's Runner with our plugin imported.

The task's plugin module (``TaskAdapter.plugin_module``) is imported before the config is read,
so ``Corrupt`` and the shims are in place even for configs without ``custom_imports``. On a
machine without CUDA, ``--launcher pytorch`` runs on gloo
(:func:`~robust_transfer.integrations.openmmlab.prepare_cpu_distributed`).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Sequence

from .openmmlab import TaskAdapter, load_framework_config, prepare_cpu_distributed


def _common(parser: argparse.ArgumentParser) -> None:
    from mmengine.config import DictAction

    parser.add_argument("--work-dir", help="folder for logs and checkpoints")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction,
                        help="override config settings, xxx=yyy (see mmengine's DictAction)")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none",
                        help="job launcher")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0, help=argparse.SUPPRESS)


def build_train_parser(task: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=f"Train a {task} model (mmengine Runner)")
    p.add_argument("config", help="train config file path")
    p.add_argument("--amp", action="store_true", help="automatic mixed precision (AmpOptimWrapper)")
    p.add_argument("--auto-scale-lr", action="store_true",
                   help="scale the lr linearly with the total batch size (auto_scale_lr in the config)")
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="resume from this checkpoint, or from the latest one in the work dir")
    _common(p)
    return p


def build_test_parser(task: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=f"Test a {task} model (mmengine Runner)")
    p.add_argument("config", help="test config file path")
    p.add_argument("checkpoint", help="checkpoint file")
    p.add_argument("--out", help="dump the predictions to this .pkl file")
    p.add_argument("--show-dir", help="draw predictions into this folder")
    _common(p)
    return p


def _load(args: argparse.Namespace, adapter: TaskAdapter):
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(args.local_rank)
    cfg = load_framework_config(args, adapter)
    prepare_cpu_distributed(cfg, args.launcher)
    return cfg


def _build_runner(cfg):
    if "runner_type" in cfg:
        from mmengine.registry import RUNNERS

        return RUNNERS.build(cfg)
    from mmengine.runner import Runner

    return Runner.from_cfg(cfg)


def train_main(argv: Sequence[str] | None, adapter: TaskAdapter):
    """``tools/train.py``: returns the trained model's runner."""
    parser = build_train_parser(adapter.task)
    args = parser.parse_args(argv)
    cfg = _load(args, adapter)
    if args.amp:
        wrapper = cfg.optim_wrapper.get("type", "OptimWrapper")
        if wrapper == "OptimWrapper":
            cfg.optim_wrapper.type = "AmpOptimWrapper"
            cfg.optim_wrapper.setdefault("loss_scale", "dynamic")
        elif wrapper != "AmpOptimWrapper":
            parser.error(f"--amp: the config's optim_wrapper is {wrapper}, not OptimWrapper")
    if args.auto_scale_lr:
        if "auto_scale_lr" not in cfg or "base_batch_size" not in cfg.auto_scale_lr:
            parser.error("--auto-scale-lr needs auto_scale_lr=dict(base_batch_size=...) in the config")
        cfg.auto_scale_lr.enable = True
    if args.resume == "auto":
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    runner = _build_runner(cfg)
    runner.train()
    return runner


def test_main(argv: Sequence[str] | None, adapter: TaskAdapter) -> dict:
    """``tools/test.py``: returns the metrics."""
    parser = build_test_parser(adapter.task)
    args = parser.parse_args(argv)
    cfg = _load(args, adapter)
    from .openmmlab import drop_pretrained_weights

    drop_pretrained_weights(cfg)
    if adapter.prepare_config is not None:
        adapter.prepare_config(cfg)
    cfg.load_from = args.checkpoint
    if args.show_dir:
        if adapter.configure_show is None:
            parser.error(f"--show-dir is not supported for the {adapter.task} task")
        adapter.configure_show(cfg, str(Path(args.show_dir).resolve()))
    runner = _build_runner(cfg)
    if args.out is not None:
        if not args.out.endswith((".pkl", ".pickle")):
            parser.error("--out: the dump file must end with .pkl or .pickle")
        from mmengine.evaluator import DumpResults

        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    return runner.test()
