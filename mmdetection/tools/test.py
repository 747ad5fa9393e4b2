#!/usr/bin/env python
"""Test an mmdet model on clean data with mmengine's Runner, our plugin imported (mmdet's
test.py flags: config, checkpoint, --out X.pkl, --show, --show-dir, --tta, --work-dir,
--cfg-options, --launcher; plus --metrics-json). For the corruption grid use
test_robustness.py.

    python mmdetection/tools/test.py CONFIG CHECKPOINT --work-dir work_dirs/test
"""
import sys

from robust_transfer.openmmlab.detection import DETECTION
from robust_transfer.openmmlab.tools import test_main


def main(argv=None):
    return test_main(argv, DETECTION)


if __name__ == "__main__":
    main(sys.argv[1:])
