# Mask R-CNN R50-FPN, 2x schedule, lr 0.04: the detection recipe of Yamada & Otani (CVPR 2022),
# full-network transfer of the regular (torchvision) ImageNet ResNet-50. Every other ResNet-50
# config of the study inherits from this one and changes only the backbone checkpoint (and, for
# fixed-feature transfer, the backbone's learning rate).
#
# Recipe: SGD lr 0.04, momentum 0.9, weight decay 1e-4; 24 epochs with the lr divided by 10 after
# epochs 16 and 22; linear warm-up over the first 500 iterations (start factor 0.001).
# Backbone as mmdet's default: frozen_stages=1 (stem + first stage frozen) and norm_eval=True
# (BatchNorm uses and keeps its ImageNet running statistics; its affine parameters train).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_2x_coco.py'
custom_imports = dict(imports=['robust_transfer.openmmlab.mmdet'], allow_failed_imports=False)

# The ImageNet backbone: one variable. 'torchvision://resnet50' is mmengine's name for the
# torchvision weights; any file written by mmdetection/tools/model_converters/ works too.
backbone_checkpoint = 'torchvision://resnet50'
transfer = dict(backbone='regular', mode='full-network')

model = dict(
    backbone=dict(
        frozen_stages=1,
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)))

max_epochs = 24
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[16, 22], gamma=0.1),
]
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.04, momentum=0.9, weight_decay=0.0001))
# lr 0.04 is for the total batch of 16 images (8 GPUs x 2 images) the 2x schedule assumes;
# pass --auto-scale-lr to tools/train.py to scale it linearly with another batch size.
auto_scale_lr = dict(enable=False, base_batch_size=16)
