#!/usr/bin/env python
"""Convert any supported ImageNet ResNet checkpoint (layout detected, or --format) to mmdet's
ResNet backbone keys (classifier dropped, weights_only=True).

Any torchvision- or timm-layout ResNet converts: the architecture (depth, ResNeXt groups,
timm's ResNet-D deep stem -> mmdet's ResNetV1d) is read off the keys unless --arch names it;
the file's meta.backbone_cfg is the backbone config it fits (docs/own-backbone.md). Bad input
(not a checkpoint, keys that do not fit): one line, exit status 2.

    python mmdetection/tools/model_converters/resnet2mmdet.py SRC DST [--format F] [--arch auto|resnet50|resnet50d|...]
"""
from robust_transfer.backbones.mmdet import converter_main

if __name__ == "__main__":
    converter_main(description=__doc__.splitlines()[0])
