# UperNet R50 512x512 80k ADE20K, fixed-feature transfer from the ANT (adversarial noise
# training) ImageNet ResNet-50: the backbone's weights get no updates (lr_mult=0) and no weight decay
# (decay_mult=0); the heads are trained. BatchNorm: its affine parameters are frozen with the
# rest, its running statistics are re-estimated on ADE20K (norm_eval=False), as in the paper's
# configs and in robust-models-transfer's --freeze-level; add
# --cfg-options model.backbone.norm_eval=True to keep the ImageNet statistics.
_base_ = './upernet_r50_512x512_80k_ade20k_ant.py'

optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={'backbone': dict(lr_mult=0.0, decay_mult=0.0)}))
transfer = dict(mode='fixed-feature')
# mmseg's 80k schedule decays to eta_min=1e-4, and PolyLR applies that floor to every parameter
# group: it would lift the frozen backbone's lr from 0 to up to 1e-4. Decay to 0 instead (the
# heads' schedule differs from the paper's only in its last 1e-4 of learning rate).
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=80000, by_epoch=False)]
