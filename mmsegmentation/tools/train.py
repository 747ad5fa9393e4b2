#!/usr/bin/env python
"""Train a segmentor: mmseg's tools/train.py flags, on the installed mmseg package.

Before building the runner, the ImageNet backbone file of the config is checked against the
backbone it builds (mmengine would load a mismatching file with strict=False, i.e. train from
random weights after one log line); --no-check-backbone skips that.

    python mmsegmentation/tools/train.py mmsegmentation/configs/upernet/CONFIG.py
    bash mmsegmentation/tools/dist_train.sh CONFIG 4
"""
import argparse
import os
import sys

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Train a segmentor")
    parser.add_argument("config", help="train config file path")
    parser.add_argument("--work-dir", help="the dir to save logs and models")
    parser.add_argument("--resume", action="store_true",
                        help="resume from the latest checkpoint in the work_dir automatically")
    parser.add_argument("--amp", action="store_true", help="automatic mixed precision")
    parser.add_argument("--no-check-backbone", action="store_true",
                        help="do not check the pretrained backbone file against the model")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction,
                        help="override config settings, xxx=yyy (see mmengine's DictAction)")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none",
                        help="job launcher")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    from robust_transfer.backbones import CheckpointError
    from robust_transfer.backbones.mmseg import check_backbone_checkpoint
    from robust_transfer.integrations import mmseg as plugin

    cfg = plugin.load_config(args.config, cfg_options=args.cfg_options, work_dir=args.work_dir,
                             launcher=args.launcher)
    if args.amp:
        plugin.enable_amp(cfg)
    cfg.resume = args.resume
    if not args.no_check_backbone and not args.resume:
        try:
            check_backbone_checkpoint(cfg)
        except CheckpointError as error:
            sys.exit(f"error: {error}")
    plugin.build_runner(cfg).train()


if __name__ == "__main__":
    main()
