"""``tools/train.py`` and ``tools/test.py`` of both frameworks (mmdet's and mmseg's flags), on
mmengine's Runner with our plugin imported; ``tools/test_robustness.py`` is
:func:`robust_transfer.openmmlab.robustness.robustness_main`.

What differs between the frameworks comes from the :class:`TaskAdapter`: the backbone check
before training (``--no-check-backbone``), what ``tools/test.py --out`` writes, the metrics
line it prints. On a machine without CUDA, ``--launcher pytorch`` runs on gloo
(:func:`~robust_transfer.openmmlab.runner.prepare_cpu_distributed`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from .adapter import TaskAdapter
from .runner import (add_runner_flags, build_runner, drop_pretrained_weights, enable_amp,
                     load_tool_config, use_tta)
from .tool_inputs import (check_checkpoint_file, check_config_file, check_writable_outputs,
                          exit_with_error)


def build_train_parser(adapter: TaskAdapter) -> argparse.ArgumentParser:
    """``tools/train.py``'s flags."""
    p = argparse.ArgumentParser(description=f"Train a {adapter.task} model (mmengine Runner)")
    p.add_argument("config", help="train config file path")
    p.add_argument("--amp", action="store_true",
                   help="automatic mixed precision: OptimWrapper becomes AmpOptimWrapper (dynamic "
                   "loss scale unless the config sets one); a config on AmpOptimWrapper is kept")
    p.add_argument("--auto-scale-lr", action="store_true",
                   help="scale the lr linearly with the total batch size (auto_scale_lr in the config)")
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CHECKPOINT",
                   help="resume from this checkpoint, or (no value) from the latest one in the work dir")
    if adapter.check_backbone is not None:
        p.add_argument("--no-check-backbone", action="store_true",
                       help="do not check the pretrained backbone file against the model")
    add_runner_flags(p)
    return p


def train_main(argv: Sequence[str] | None, adapter: TaskAdapter):
    """``tools/train.py``: returns the trained model's runner."""
    parser = build_train_parser(adapter)
    args = parser.parse_args(argv)
    try:  # every input checked before the runner builds anything
        check_config_file(args.config)
        cfg = load_tool_config(args, adapter)
        if args.amp:
            enable_amp(cfg)
        if args.resume not in (None, "auto"):
            check_checkpoint_file(args.resume, "--resume")
        check_writable_outputs(folders={"--work-dir": cfg.work_dir})
    except ValueError as error:
        exit_with_error(parser, str(error))
    if args.auto_scale_lr:
        if "auto_scale_lr" not in cfg or "base_batch_size" not in cfg.auto_scale_lr:
            exit_with_error(parser, "--auto-scale-lr needs auto_scale_lr=dict(base_batch_size=...) "
                            "in the config")
        cfg.auto_scale_lr.enable = True
    if args.resume == "auto":
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if adapter.check_backbone is not None and not args.no_check_backbone and args.resume is None:
        from ..backbones import CheckpointError

        try:
            adapter.check_backbone(cfg)
        except CheckpointError as error:
            sys.exit(f"error: {error}")
    runner = build_runner(cfg, adapter)
    runner.train()
    return runner


def build_test_parser(adapter: TaskAdapter) -> argparse.ArgumentParser:
    """``tools/test.py``'s flags."""
    p = argparse.ArgumentParser(description=f"Test a {adapter.task} model on clean data (mmengine "
                                "Runner); for the corruption grid use tools/test_robustness.py")
    p.add_argument("config", help="test config file path")
    p.add_argument("checkpoint", help="checkpoint file")
    if adapter.test_out == "folder":
        p.add_argument("--out", help="folder to save the predictions for offline evaluation")
    else:
        p.add_argument("--out", help="dump the predictions to this .pkl file")
    p.add_argument("--show", action="store_true", help="show prediction results in a window")
    p.add_argument("--show-dir", help="draw predictions into this folder")
    p.add_argument("--wait-time", type=float, default=2, help="the interval of --show (s)")
    p.add_argument("--tta", action="store_true",
                   help="test-time augmentation (tta_pipeline and tta_model in the config)")
    p.add_argument("--metrics-json", help="also write the metrics to this JSON file")
    add_runner_flags(p)
    return p


def _configure_test(parser: argparse.ArgumentParser, args: argparse.Namespace, adapter: TaskAdapter):
    """The test config of ``tools/test.py``'s flags, its inputs and outputs checked;
    :func:`exit_with_error` on bad input or a bad combination."""
    try:
        check_config_file(args.config)
        cfg = load_tool_config(args, adapter)  # (imports the plugin: its checkpoint allow-list)
        check_checkpoint_file(args.checkpoint)
        out_is_folder = adapter.test_out == "folder"
        check_writable_outputs(
            files={"--metrics-json": args.metrics_json, "--out": None if out_is_folder else args.out},
            folders={"--out": args.out if out_is_folder else None, "--show-dir": args.show_dir,
                     "--work-dir": cfg.work_dir})
    except ValueError as error:
        exit_with_error(parser, str(error))
    drop_pretrained_weights(cfg)  # the weights come from the checkpoint
    if adapter.prepare_config is not None:
        adapter.prepare_config(cfg)
    cfg.load_from = args.checkpoint
    try:
        if args.show or args.show_dir:
            if adapter.configure_show is None:
                exit_with_error(parser, f"--show/--show-dir are not supported for the {adapter.task} task")
            adapter.configure_show(cfg, str(Path(args.show_dir).resolve()) if args.show_dir else None)
            if args.show:
                cfg.default_hooks.visualization.update(show=True, wait_time=args.wait_time)
        if args.tta:
            use_tta(cfg)
    except ValueError as error:
        exit_with_error(parser, str(error))
    if args.out is not None and adapter.test_out == "folder":
        cfg.test_evaluator["output_dir"] = args.out
        cfg.test_evaluator["keep_results"] = True
    elif args.out is not None and not args.out.endswith((".pkl", ".pickle")):
        exit_with_error(parser, "--out: the dump file must end with .pkl or .pickle")
    return cfg


def test_main(argv: Sequence[str] | None, adapter: TaskAdapter) -> dict:
    """``tools/test.py``: returns the metrics (on rank 0 also printed as one line when the
    adapter names ``printed_metrics``, and written to ``--metrics-json``)."""
    parser = build_test_parser(adapter)
    args = parser.parse_args(argv)
    cfg = _configure_test(parser, args, adapter)
    runner = build_runner(cfg, adapter)
    if args.out is not None and adapter.test_out == "pickle":
        from mmengine.evaluator import DumpResults

        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    metrics = runner.test()
    if runner.rank == 0:
        tidy = adapter.tidy_metrics(dict(metrics)) if adapter.tidy_metrics else dict(metrics)
        numbers = {k: float(v) for k, v in tidy.items() if _is_number(v)}
        if args.metrics_json:
            Path(args.metrics_json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.metrics_json).write_text(json.dumps(numbers, indent=1) + "\n")
        if adapter.printed_metrics:
            print(" ".join(f"{k}={numbers[k]:.2f}" for k in adapter.printed_metrics if k in numbers))
    return metrics


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, (str, bool))
