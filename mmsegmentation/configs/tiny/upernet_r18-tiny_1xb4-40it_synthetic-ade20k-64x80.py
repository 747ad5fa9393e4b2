# A tiny UperNet for CPU tests and smoke runs: a ResNet-18-shaped backbone with 16 base
# channels, small heads, 64x80 images of the synthetic ADE20K folder written by
# robust_transfer.datasets.synthetic_ade20k.write_synthetic_ade20k, 40 iterations.
# Same plugin, data set class, pipelines (at 1/8 of the scale) and metric as the paper configs.
_base_ = '../_base_/upernet_r50_imagenet-backbone.py'

data_root = 'data/synthetic_ade20k'  # --cfg-options *_dataloader.dataset.data_root=...
crop_size = (64, 64)
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        depth=18, stem_channels=16, base_channels=16, norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=[16, 32, 64, 128], channels=32, pool_scales=(1, 2, 3),
        dropout_ratio=0.0, norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=64, channels=16, dropout_ratio=0.0, norm_cfg=norm_cfg))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(320, 64), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(320, 64), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=0.05))
max_iters = 40
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_iters))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
transfer = dict(backbone='scratch', mode='full-network')
