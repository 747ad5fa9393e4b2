# Fixed-feature transfer of Swin-T: the whole backbone frozen through the optimizer.
# mmengine applies the LONGEST matching custom key, so the position tables (which live only in
# the backbone) must carry lr_mult=0 themselves: with only 'backbone' frozen, the longer keys
# 'absolute_pos_embed' / 'relative_position_bias_table' of the base recipe would win and train
# them. Backbone LayerNorms match 'backbone' (longer than 'norm') and are frozen.
_base_ = './mask_rcnn_swin-t-p4-w7_fpn_fp16_ms-crop-2x_coco.py'

backbone_checkpoint = '{{fileDirname}}/../../checkpoints/swin_tiny_patch4_window7_224_mmdet.pth'
transfer = dict(backbone='swin_t', mode='fixed-feature')

model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)))
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=0.0, decay_mult=0.0),
            'absolute_pos_embed': dict(lr_mult=0.0, decay_mult=0.0),
            'relative_position_bias_table': dict(lr_mult=0.0, decay_mult=0.0),
            'norm': dict(decay_mult=0.0),
        }))
