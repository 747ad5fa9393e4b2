#!/usr/bin/env python
"""Convert the L2-robust ResNet-50 of microsoft/robust-models-transfer (robustness-library .ckpt, module.model. / module.attacker. prefixes)
to mmdet's ResNet backbone keys (classifier dropped, weights_only=True).

    python mmdetection/tools/model_converters/robustness2mmdet.py SRC DST [--arch auto|resnet50|resnet50d|...]
"""
from robust_transfer.backbones.mmdet import converter_main

if __name__ == "__main__":
    converter_main(fmt="robustness", description=__doc__.splitlines()[0])
