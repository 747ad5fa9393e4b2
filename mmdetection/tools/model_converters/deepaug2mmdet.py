#!/usr/bin/env python
"""Convert the DeepAugment+AugMix ResNet-50 of hendrycks/imagenet-r (deepaugment_and_augmix.pth.tar)
to mmdet's ResNet backbone keys (classifier dropped, weights_only=True).

    python mmdetection/tools/model_converters/deepaug2mmdet.py SRC DST [--arch auto|resnet50|resnet50d|...]
"""
from robust_transfer.backbones.mmdet import converter_main

if __name__ == "__main__":
    converter_main(fmt="deepaugment", description=__doc__.splitlines()[0])
