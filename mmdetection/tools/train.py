#!/usr/bin/env python
"""Train an mmdet model with mmengine's Runner, our plugin imported (mmdet's train.py flags:
config, --work-dir, --amp, --auto-scale-lr, --resume [CKPT], --cfg-options, --launcher).

    python mmdetection/tools/train.py mmdetection/configs/mask_rcnn/CONFIG.py
    bash mmdetection/tools/dist_train.sh CONFIG 8
"""
import sys

from robust_transfer.openmmlab.detection import DETECTION
from robust_transfer.openmmlab.tools import train_main


def main(argv=None):
    return train_main(argv, DETECTION)


if __name__ == "__main__":
    main(sys.argv[1:])
