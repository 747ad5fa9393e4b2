#!/usr/bin/env python
"""Evaluate an mmseg model under ImageNet-C corruptions (corruption x severity grid).

The flags and behaviour of mmdetection/tools/test_robustness.py (one shared runner,
robust_transfer.openmmlab.robustness; only the segmentation adapter differs): the model is
built and the checkpoint loaded once; per cell only the test pipeline changes (Corrupt inserted
after the image-loading step). mIoU, mAcc and aAcc per cell go to our results JSON (atomically,
cell by cell: --resume continues, --shard i/n splits); P / mPC / rPC are printed at the end.

    python mmsegmentation/tools/test_robustness.py CONFIG CHECKPOINT --out out/r.pkl \
        --corruptions benchmark --severities 0 1 2 3 4 5 --final-prints P mPC rPC
    bash mmsegmentation/tools/dist_test.sh CONFIG CHECKPOINT 8 --robustness --out out/r.pkl

--out X.pkl puts the results at X.json (mmdet's robustness_eval.py pickle is written for
detection only: it reads COCO metrics).

On a GPU the defaults are --corrupt-on batch with the torch backend (the corruption never
keeps the GPU waiting); --backend numpy gives the numpy reference in the pipeline.
"""
import sys

from robust_transfer.openmmlab.robustness import robustness_main
from robust_transfer.openmmlab.segmentation import SEGMENTATION


def main(argv=None):
    return robustness_main(argv, SEGMENTATION)


if __name__ == "__main__":
    main(sys.argv[1:])
