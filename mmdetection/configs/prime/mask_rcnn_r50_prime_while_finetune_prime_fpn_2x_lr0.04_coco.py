# PRIME augmentation during transfer (Yamada & Otani, CVPR 2022, PRIME table):
# Mask R-CNN R50-FPN, 2x, lr 0.04, PRIME-pretrained ImageNet ResNet-50; full-network transfer.
# Recipe and backbone checkpoint: ../mask_rcnn/mask_rcnn_r50_prime_fpn_2x_lr0.04_coco.py
# (unchanged). The only change is the data preprocessor: PRIME on the training images, before
# normalisation (the inner preprocessor is the base config's), never at validation or test time.
# Settings: ./_base_/prime_transfer.py.
_base_ = [
    '../mask_rcnn/mask_rcnn_r50_prime_fpn_2x_lr0.04_coco.py',
    './_base_/prime_transfer.py',
]
custom_imports = dict(
    imports=['robust_transfer.openmmlab.mmdet',
             'robust_transfer.openmmlab.prime_preprocessor'],
    allow_failed_imports=False)

model = dict(
    data_preprocessor=dict(
        _delete_=True,
        type='PRIMEDataPreprocessor',
        preprocessor={{_base_.model.data_preprocessor}},
        prime={{_base_.prime}},
        seed={{_base_.prime_seed}}))
transfer = dict(augmentation='prime')  # merged into the base's dict(backbone=..., mode=...)
