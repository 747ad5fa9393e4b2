# Smoke / demo segmentation model, fixed-feature transfer: no update (lr_mult=0) and no weight
# decay (decay_mult=0) for the backbone, as in the paper's *_fixedfeature configs; BatchNorm
# statistics are re-estimated (norm_eval=False), as there.
#
# The poly schedule ends at eta_min=0 here: mmengine's PolyLR moves every parameter group's lr
# towards the same eta_min, so with the base's eta_min=1e-4 a group with lr_mult=0 would get a
# learning rate growing from 0 to 1e-4 and the "frozen" backbone would train.
_base_ = './upernet_r18_synthetic-ade20k.py'

optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.0, decay_mult=0.0)}))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end={{_base_.max_iters}}, by_epoch=False)
]
transfer = dict(mode='fixed-feature')
