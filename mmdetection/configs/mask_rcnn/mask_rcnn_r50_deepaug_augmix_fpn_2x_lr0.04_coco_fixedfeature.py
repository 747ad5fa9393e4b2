# Fixed-feature transfer of the DeepAugment+AugMix (Hendrycks et al. 2021) ResNet-50: backbone frozen by lr_mult=0 and
# decay_mult=0; BatchNorm in eval mode with its ImageNet statistics (norm_eval=True, inherited).
# See mask_rcnn_r50_fpn_2x_lr0.04_coco_fixedfeature.py.
_base_ = './mask_rcnn_r50_deepaug_augmix_fpn_2x_lr0.04_coco.py'

backbone_checkpoint = '{{fileDirname}}/../../checkpoints/resnet50_deepaug_augmix_mmdet.pth'
transfer = dict(backbone='deepaug_augmix', mode='fixed-feature')

model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)))
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.0, decay_mult=0.0)}))
