# UperNet R50 512x512 80k ADE20K, full-network transfer (every parameter trained) from the
# PRIME ImageNet ResNet-50.
_base_ = '../_base_/upernet_r50_imagenet-backbone.py'

# The converted backbone: tools/model_converters/imagenet2mmseg.py --backbone prime SRC
backbone_checkpoint = '{{fileDirname}}/../../checkpoints/resnet50_prime_mmseg.pth'
model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)))
transfer = dict(backbone='prime', mode='full-network')
