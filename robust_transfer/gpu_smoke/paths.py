"""The tools and tiny configs the GPU smoke runs, in this repository."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DET_TOOLS = REPO / "mmdetection" / "tools"
SEG_TOOLS = REPO / "mmsegmentation" / "tools"
CLS_MAIN = REPO / "robust-models-transfer" / "src" / "main.py"
DET_CONFIG = REPO / "mmdetection" / "configs" / "tests" / "mask-rcnn_r18-tiny_fpn_synthetic-coco.py"
SEG_CONFIG = REPO / "mmsegmentation" / "configs" / "tiny" / "upernet_r18-tiny_1xb4-40it_synthetic-ade20k-64x80.py"
