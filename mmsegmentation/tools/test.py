#!/usr/bin/env python
"""Test (and evaluate) a segmentor: mmseg's tools/test.py flags, on the installed mmseg package.

Prints the metrics as the last line (``mIoU=.. mAcc=.. aAcc=..``); --metrics-json also writes
them to a file. For the same numbers under a corruption, put
dict(type='Corrupt', corruption=..., severity=...) after LoadImageFromFile in the test
pipeline, or use tools/test_robustness.py for a whole grid.
"""
import argparse
import json
import os
from pathlib import Path

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="MMSeg test (and eval) a model")
    parser.add_argument("config", help="test config file path")
    parser.add_argument("checkpoint", help="checkpoint file")
    parser.add_argument("--work-dir", help="the dir for logs and the metrics json of mmengine")
    parser.add_argument("--out", help="folder to save the predictions for offline evaluation")
    parser.add_argument("--show", action="store_true", help="show prediction results")
    parser.add_argument("--show-dir", help="folder where painted images are saved")
    parser.add_argument("--wait-time", type=float, default=2, help="the interval of show (s)")
    parser.add_argument("--metrics-json", help="also write the metrics to this JSON file")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction,
                        help="override config settings, xxx=yyy (see mmengine's DictAction)")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none",
                        help="job launcher")
    parser.add_argument("--tta", action="store_true", help="test-time augmentation")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    from robust_transfer.integrations import mmseg as plugin
    from robust_transfer.integrations.openmmlab import drop_pretrained_weights

    cfg = plugin.load_config(args.config, cfg_options=args.cfg_options, work_dir=args.work_dir,
                             launcher=args.launcher)
    cfg.load_from = args.checkpoint
    drop_pretrained_weights(cfg)  # the weights come from the checkpoint
    if args.show or args.show_dir:
        plugin.configure_show(cfg, str(Path(args.show_dir).resolve()) if args.show_dir else None)
        if args.show:
            cfg.default_hooks.visualization.update(show=True, wait_time=args.wait_time)
    if args.tta:
        plugin.use_tta(cfg)
    if args.out is not None:
        cfg.test_evaluator["output_dir"] = args.out
        cfg.test_evaluator["keep_results"] = True
    runner = plugin.build_runner(cfg)
    metrics = runner.test()
    if runner.rank == 0:
        metrics = {k: float(v) for k, v in plugin.tidy_metrics(metrics).items()}
        if args.metrics_json:
            Path(args.metrics_json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.metrics_json).write_text(json.dumps(metrics, indent=1) + "\n")
        print(plugin.format_metrics(metrics))


if __name__ == "__main__":
    main()
