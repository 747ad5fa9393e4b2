# UperNet Swin-T 512x512 80k ADE20K, full-network transfer from the ImageNet-1K Swin-T
# (microsoft/Swin-Transformer swin_tiny_patch4_window7_224.pth). mmseg's Swin-T recipe (AdamW
# lr 6e-5, weight decay 0.01, 1500 iterations of linear warm-up, then linear decay; 8 GPUs x 2
# images), run for 80k iterations as in the paper instead of mmseg's 160k.
_base_ = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'

custom_imports = dict(
    imports=['robust_transfer.openmmlab.mmseg'], allow_failed_imports=False)

# mmseg's SwinTransformer does not convert the official keys (and loads with strict=False):
# convert first, tools/model_converters/imagenet2mmseg.py --backbone swin_t SRC.
backbone_checkpoint = '{{fileDirname}}/../../checkpoints/swin_tiny_patch4_window7_224_mmseg.pth'
model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)))
transfer = dict(backbone='swin_t', mode='full-network')

max_iters = 80000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=max_iters, by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))
