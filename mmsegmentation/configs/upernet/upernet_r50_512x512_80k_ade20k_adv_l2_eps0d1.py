# UperNet R50 512x512 80k ADE20K, full-network transfer (every parameter trained) from the
# L2-robust (eps 0.1) ImageNet ResNet-50.
_base_ = '../_base_/upernet_r50_imagenet-backbone.py'

# The converted backbone: tools/model_converters/imagenet2mmseg.py --backbone l2_eps0.1 SRC
backbone_checkpoint = '{{fileDirname}}/../../checkpoints/resnet50_l2_eps0.1_mmseg.pth'
model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)))
transfer = dict(backbone='l2_eps0.1', mode='full-network')
