#!/usr/bin/env python
"""Evaluate an mmdet model under ImageNet-C corruptions (corruption x severity grid).

Same flags as mmdet's tools/analysis_tools/test_robustness.py, plus --backend, --corrupt-on,
--resume and --shard i/n. The model is built and the checkpoint loaded once; per cell only the
test pipeline changes (Corrupt inserted after the image-loading step), or with --corrupt-on batch
only the corruption of the model's batch preprocessor. Writes our results JSON and,
with --out X.pkl, the pickle mmdet's robustness_eval.py reads; prints P / mPC / rPC.

    python mmdetection/tools/test_robustness.py CONFIG CHECKPOINT --out out/r.pkl \
        --corruptions benchmark --severities 0 1 2 3 4 5 --final-prints P mPC rPC
    bash mmdetection/tools/dist_test.sh CONFIG CHECKPOINT 8 --robustness --out out/r.pkl

On a GPU the defaults are --corrupt-on batch with the torch backend (the corruption never
keeps the GPU waiting); --backend numpy gives the numpy reference in the pipeline.
"""
import sys

from robust_transfer.openmmlab.detection import DETECTION
from robust_transfer.openmmlab.robustness import robustness_main


def main(argv=None):
    return robustness_main(argv, DETECTION)


if __name__ == "__main__":
    main(sys.argv[1:])
