# Fixed-feature transfer of the L2-robust (eps 1, Salman et al. 2020) ResNet-50: backbone frozen by lr_mult=0 and
# decay_mult=0; BatchNorm in eval mode with its ImageNet statistics (norm_eval=True, inherited).
# See mask_rcnn_r50_fpn_2x_lr0.04_coco_fixedfeature.py.
_base_ = './mask_rcnn_r50_adv_l2_eps1d0_fpn_2x_lr0.04_coco.py'

backbone_checkpoint = '{{fileDirname}}/../../checkpoints/resnet50_l2_eps1_mmdet.pth'
transfer = dict(backbone='l2_eps1', mode='fixed-feature')

model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)))
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.0, decay_mult=0.0)}))
