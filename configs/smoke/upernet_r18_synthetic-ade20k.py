# Smoke / demo segmentation model: the tiny UperNet of the tests
# (mmsegmentation/configs/tiny/upernet_r18-tiny_1xb4-40it_synthetic-ade20k-64x80.py) with a
# torchvision-shaped ResNet-18 backbone (64 stem and base channels) started from an ImageNet
# stand-in; full-network transfer. Only the plumbing is real: `robust-transfer reproduce --smoke`
# and `robust-transfer demo` use it in place of the paper's UperNet R50 configs.
#
# The backbone file is set on the command line, as the reproduction runner does:
#   --cfg-options model.backbone.init_cfg.checkpoint=FILE
# (mmseg's ResNet has torchvision's keys: the detection converters' output loads as is).
# Data: SYNTHETIC_ADE20K_ROOT, a folder written by
# robust_transfer.datasets.synthetic_ade20k.write_synthetic_ade20k.
_base_ = '../../mmsegmentation/configs/tiny/upernet_r18-tiny_1xb4-40it_synthetic-ade20k-64x80.py'

backbone_checkpoint = 'work_dirs/smoke/converted/segmentation/regular.pth'
data_root = '{{$SYNTHETIC_ADE20K_ROOT:data/synthetic_ade20k}}'

model = dict(
    backbone=dict(
        stem_channels=64, base_channels=64,
        init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256))

train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
default_hooks = dict(checkpoint=dict(save_optimizer=False))
transfer = dict(backbone='stand-in', mode='full-network')
