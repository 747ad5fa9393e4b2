# Fixed-feature transfer of the regular ImageNet ResNet-50: as the full-network config, but the
# whole backbone is frozen through the optimizer (lr_mult=0, decay_mult=0 for every parameter
# whose name contains 'backbone': convolutions and BatchNorm affine parameters alike).
# BatchNorm: norm_eval=True (inherited, mmdet's default) keeps the BN layers in eval mode during
# training, so their running mean/variance stay the ImageNet statistics; with lr_mult=0 the
# backbone is exactly the ImageNet network. Only FPN, RPN and RoI heads are trained.
_base_ = './mask_rcnn_r50_fpn_2x_lr0.04_coco.py'

backbone_checkpoint = 'torchvision://resnet50'
transfer = dict(backbone='regular', mode='fixed-feature')

model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)))
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.0, decay_mult=0.0)}))
