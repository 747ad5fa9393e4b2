#!/usr/bin/env python
"""Train a segmentor with mmengine's Runner, our plugin imported (mmseg's train.py flags:
config, --work-dir, --amp, --resume [CKPT], --cfg-options, --launcher; plus --auto-scale-lr).

Before building the runner, the ImageNet backbone file of the config is checked against the
backbone it builds (mmengine would load a mismatching file with strict=False, i.e. train from
random weights after one log line); --no-check-backbone skips that.

    python mmsegmentation/tools/train.py mmsegmentation/configs/upernet/CONFIG.py
    bash mmsegmentation/tools/dist_train.sh CONFIG 4
"""
import sys

from robust_transfer.openmmlab.segmentation import SEGMENTATION
from robust_transfer.openmmlab.tools import train_main


def main(argv=None):
    return train_main(argv, SEGMENTATION)


if __name__ == "__main__":
    main(sys.argv[1:])
