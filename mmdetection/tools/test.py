#!/usr/bin/env python
"""Test an mmdet model on clean data with mmengine's Runner, our plugin imported (mmdet's
test.py flags: config, checkpoint, --out, --show-dir, --work-dir, --cfg-options, --launcher).
For the corruption grid use test_robustness.py."""
import sys

from robust_transfer.integrations.mmdet import DETECTION
from robust_transfer.integrations.openmmlab_cli import test_main

if __name__ == "__main__":
    test_main(sys.argv[1:], DETECTION)
