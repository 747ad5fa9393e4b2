# Smoke / demo detection model: the tiny Mask R-CNN of the tests
# (mmdetection/configs/tests/mask-rcnn_r18-tiny_fpn_synthetic-coco.py) with a torchvision-shaped
# ResNet-18 backbone (64 base channels) started from an ImageNet stand-in, trained with the
# study's full-network recipe for the backbone (frozen_stages=1, norm_eval=True: BatchNorm keeps
# the pre-training statistics). Only the plumbing is real: `robust-transfer reproduce --smoke`
# and `robust-transfer demo` use it in place of the paper's Mask R-CNN R50-FPN configs.
#
# The backbone file is set on the command line, as the reproduction runner does:
#   --cfg-options model.backbone.init_cfg.checkpoint=FILE   (a file written by
#   mmdetection/tools/model_converters/*2mmdet.py --arch resnet18)
# Data: SYNTHETIC_COCO_ROOT (see the base config).
_base_ = '../../mmdetection/configs/tests/mask-rcnn_r18-tiny_fpn_synthetic-coco.py'

backbone_checkpoint = 'work_dirs/smoke/converted/detection/regular.pth'
max_iters = 30

model = dict(
    backbone=dict(
        base_channels=64, frozen_stages=1, norm_eval=True,
        init_cfg=dict(_delete_=True, type='Pretrained', checkpoint=backbone_checkpoint)),
    neck=dict(in_channels=[64, 128, 256, 512]),
    # keep every detection (mmdet's default drops scores < 0.05): on a handful of images a weak
    # model can otherwise return nothing under a strong corruption, and COCO AP of an empty
    # result set is undefined (mmdet's CocoMetric returns no metrics at all)
    test_cfg=dict(rcnn=dict(score_thr=0.0)))

train_cfg = dict(max_iters=max_iters)
# an endless sampler: mmengine's iteration loop sleeps 2 s each time a finite data loader
# restarts, i.e. every 4 iterations on the 16 synthetic training images
train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True))
# half the tiny config's lr, and gradient clipping: a pre-trained 64-channel backbone under
# heads trained from scratch diverges within 30 iterations at lr 0.02
optim_wrapper = dict(optimizer=dict(lr=0.01), clip_grad=dict(max_norm=10, norm_type=2))
# only the final checkpoint, without the optimizer state (the runner never resumes these)
default_hooks = dict(checkpoint=dict(interval=max_iters, save_optimizer=False))
transfer = dict(backbone='stand-in', mode='full-network')
