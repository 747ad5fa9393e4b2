#!/usr/bin/env python
"""Convert the PRIME ResNet-50 of amodas/PRIME-augmentations ({'state_dict'}, plain or Lightning model. keys)
to mmdet's ResNet backbone keys (classifier dropped, weights_only=True).

    python mmdetection/tools/model_converters/prime2mmdet.py SRC DST [--arch auto|resnet50|resnet50d|...]
"""
from robust_transfer.backbones.mmdet import converter_main

if __name__ == "__main__":
    converter_main(fmt="prime", description=__doc__.splitlines()[0])
