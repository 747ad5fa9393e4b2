# Smoke / demo detection model, fixed-feature transfer: the backbone gets no updates
# (lr_mult=0) and no weight decay (decay_mult=0), as in the paper's *_fixedfeature configs;
# norm_eval=True (inherited) keeps BatchNorm's pre-training statistics.
_base_ = './mask-rcnn_r18_fpn_synthetic-coco.py'

optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.0, decay_mult=0.0)}))
transfer = dict(mode='fixed-feature')
