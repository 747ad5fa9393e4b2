#!/usr/bin/env python
"""Convert the ANT ResNet-50 of bethgelab/game-of-noise ({'model_state_dict'}, module. prefixes)
to mmdet's ResNet backbone keys (classifier dropped, weights_only=True).

    python mmdetection/tools/model_converters/ant2mmdet.py SRC DST [--arch auto|resnet50|resnet50d|...]
"""
from robust_transfer.backbones.mmdet import converter_main

if __name__ == "__main__":
    converter_main(fmt="ant", description=__doc__.splitlines()[0])
