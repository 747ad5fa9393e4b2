#!/usr/bin/env python
"""Train an mmdet model with mmengine's Runner, our plugin imported (mmdet's train.py flags:
config, --work-dir, --amp, --auto-scale-lr, --resume [CKPT], --cfg-options, --launcher)."""
import sys

from robust_transfer.integrations.mmdet import DETECTION
from robust_transfer.integrations.openmmlab_cli import train_main

if __name__ == "__main__":
    train_main(sys.argv[1:], DETECTION)
