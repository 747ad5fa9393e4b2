#!/usr/bin/env python
"""Convert the the regular torchvision ResNet-50 (resnet50-0676ba61.pth / resnet50-19c8e357.pth)
to mmdet's ResNet backbone keys (classifier dropped, weights_only=True).

    python mmdetection/tools/model_converters/torchvision2mmdet.py SRC DST [--arch auto|resnet50|resnet50d|...]
"""
from robust_transfer.backbones.mmdet import converter_main

if __name__ == "__main__":
    converter_main(fmt="torchvision", description=__doc__.splitlines()[0])
