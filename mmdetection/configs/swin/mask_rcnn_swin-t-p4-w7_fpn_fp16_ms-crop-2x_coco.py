# Full-network transfer of Swin-T (microsoft/Swin-Transformer swin_tiny_patch4_window7_224) with
# Mask R-CNN FPN, as in Yamada & Otani (CVPR 2022): mmdet's Swin-T recipe (AdamW lr 1e-4,
# weight decay 0.05 except position tables and norms, DETR-style multi-scale + crop
# augmentation, mixed precision), run for the study's 2x schedule: 24 epochs, lr divided by 10
# after epochs 16 and 22, linear warm-up over 500 iterations; 3 images per GPU as in the study.
# Swin has LayerNorm, not BatchNorm: nothing to put in eval mode.
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_amp-ms-crop-3x_coco.py'
custom_imports = dict(imports=['robust_transfer.openmmlab.mmdet'], allow_failed_imports=False)

# The ImageNet backbone: one variable. Convert the official file with
#   python mmdetection/tools/model_converters/swin2mmdet.py swin_tiny_patch4_window7_224.pth \
#       mmdetection/checkpoints/swin_tiny_patch4_window7_224_mmdet.pth
# (mmdet keys, hence convert_weights=False). To load the official file directly instead, set
# backbone_checkpoint to it and convert_weights=True.
backbone_checkpoint = '{{fileDirname}}/../../checkpoints/swin_tiny_patch4_window7_224_mmdet.pth'
transfer = dict(backbone='swin_t', mode='full-network')

model = dict(
    backbone=dict(convert_weights=False,
                  init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)))

max_epochs = 24
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[16, 22], gamma=0.1),
]
train_dataloader = dict(batch_size=3)
auto_scale_lr = dict(enable=False, base_batch_size=24)
