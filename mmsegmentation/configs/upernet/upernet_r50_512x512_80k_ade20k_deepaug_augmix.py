# UperNet R50 512x512 80k ADE20K, full-network transfer (every parameter trained) from the
# DeepAugment+AugMix ImageNet ResNet-50.
_base_ = '../_base_/upernet_r50_imagenet-backbone.py'

# The converted backbone: tools/model_converters/imagenet2mmseg.py --backbone deepaug_augmix SRC
backbone_checkpoint = '{{fileDirname}}/../../checkpoints/resnet50_deepaug_augmix_mmseg.pth'
model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)))
transfer = dict(backbone='deepaug_augmix', mode='full-network')
