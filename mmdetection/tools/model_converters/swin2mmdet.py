#!/usr/bin/env python
"""Convert microsoft/Swin-Transformer's swin_tiny_patch4_window7_224.pth to mmdet's
SwinTransformer keys (load with convert_weights=False; head, final norm and attn_mask dropped).

    python mmdetection/tools/model_converters/swin2mmdet.py swin_tiny_patch4_window7_224.pth DST
"""
from robust_transfer.backbones.mmdet import converter_main

if __name__ == "__main__":
    converter_main(kind="swin", description=__doc__.splitlines()[0])
