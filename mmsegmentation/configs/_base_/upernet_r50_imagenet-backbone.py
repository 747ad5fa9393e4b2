# UperNet R50, 512x512 crops, 80k iterations, ADE20K (150 classes): mmseg's own recipe
# (SGD lr 0.01, momentum 0.9, weight decay 5e-4, poly decay; 4 GPUs x 4 images), on an
# ImageNet ResNet-50 backbone of the study.
#
# Backbone: mmseg's `ResNet` (v1b: 7x7 stem, stride on the 3x3 conv = torchvision's layout)
# instead of the package default `ResNetV1c` (deep 3-conv stem), because every published
# ImageNet checkpoint of the study (torchvision, ANT, DeepAugment+AugMix, PRIME, robustness
# library L2 models) is a torchvision ResNet-50; the paper's configs made the same switch.
# The backbone file is set in each leaf config (`backbone_checkpoint`), converted by
# tools/model_converters/imagenet2mmseg.py.
_base_ = 'mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py'

custom_imports = dict(
    imports=['robust_transfer.openmmlab.mmseg'], allow_failed_imports=False)

model = dict(
    pretrained=None,
    backbone=dict(type='ResNet', depth=50))
