# PRIME augmentation during transfer (Yamada & Otani, CVPR 2022, PRIME table):
# Mask R-CNN Swin-T FPN, mmdet's Swin-T recipe for 2x, ImageNet-1K Swin-T; full-network transfer.
# Recipe and backbone checkpoint: ../swin/mask_rcnn_swin-t-p4-w7_fpn_fp16_ms-crop-2x_coco.py
# (unchanged). The only change is the data preprocessor: PRIME on the training images, before
# normalisation (the inner preprocessor is the base config's), never at validation or test time.
# Settings: ./_base_/prime_transfer.py.
_base_ = [
    '../swin/mask_rcnn_swin-t-p4-w7_fpn_fp16_ms-crop-2x_coco.py',
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
