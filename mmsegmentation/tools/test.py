#!/usr/bin/env python
"""Test (and evaluate) a segmentor: mmseg's tools/test.py flags (config, checkpoint, --out
FOLDER, --show, --show-dir, --wait-time, --tta, --work-dir, --cfg-options, --launcher), on the
installed mmseg package.

Prints the metrics as the last line (``mIoU=.. mAcc=.. aAcc=..``); --metrics-json also writes
them to a file. For the same numbers under a corruption, put
dict(type='Corrupt', corruption=..., severity=...) after LoadImageFromFile in the test
pipeline, or use tools/test_robustness.py for a whole grid.
"""
import sys

from robust_transfer.openmmlab.segmentation import SEGMENTATION
from robust_transfer.openmmlab.tools import test_main


def main(argv=None):
    return test_main(argv, SEGMENTATION)


if __name__ == "__main__":
    main(sys.argv[1:])
