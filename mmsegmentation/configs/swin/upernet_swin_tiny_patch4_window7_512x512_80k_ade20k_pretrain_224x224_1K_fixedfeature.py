# UperNet Swin-T 512x512 80k ADE20K, fixed-feature transfer: no update (lr_mult=0) and no
# weight decay (decay_mult=0) for any backbone parameter; the heads are trained.
#
# The full-network recipe's custom keys ('absolute_pos_embed', 'relative_position_bias_table',
# 'norm') are dropped here: mmengine applies the longest key contained in a parameter's name,
# so next to them a 'backbone' key would lose to 'relative_position_bias_table' and leave those
# backbone parameters trainable (the paper's fixed-feature Swin config had that flaw). They
# match only backbone parameters, which 'backbone' freezes anyway. Swin-T has LayerNorms only
# (no running statistics), so nothing else in the backbone changes during training.
_base_ = './upernet_swin_tiny_patch4_window7_512x512_80k_ade20k_pretrain_224x224_1K.py'

optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys=dict(
            _delete_=True, backbone=dict(lr_mult=0.0, decay_mult=0.0))))
transfer = dict(mode='fixed-feature')
