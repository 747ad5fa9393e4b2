#!/usr/bin/env python
"""Convert any supported ImageNet ResNet checkpoint (layout detected, or --format) to mmdet's
ResNet backbone keys (classifier dropped, weights_only=True).

    python mmdetection/tools/model_converters/resnet2mmdet.py SRC DST [--format F] [--arch resnet50]
"""
from robust_transfer.backbones.mmdet import converter_main

if __name__ == "__main__":
    converter_main(description=__doc__.splitlines()[0])
