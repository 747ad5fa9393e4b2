# Full-network transfer of the DeepAugment+AugMix (Hendrycks et al. 2021) ResNet-50 (Mask R-CNN R50-FPN, 2x, lr 0.04).
# Recipe and BatchNorm treatment: see mask_rcnn_r50_fpn_2x_lr0.04_coco.py.
# Checkpoint: convert the published file with
#   python mmdetection/tools/model_converters/deepaug2mmdet.py SRC mmdetection/checkpoints/resnet50_deepaug_augmix_mmdet.pth
_base_ = './mask_rcnn_r50_fpn_2x_lr0.04_coco.py'

backbone_checkpoint = '{{fileDirname}}/../../checkpoints/resnet50_deepaug_augmix_mmdet.pth'
transfer = dict(backbone='deepaug_augmix', mode='full-network')

model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)))
