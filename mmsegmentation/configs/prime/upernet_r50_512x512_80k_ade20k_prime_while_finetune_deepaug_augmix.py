# PRIME augmentation during transfer (Yamada & Otani, CVPR 2022, PRIME table):
# UperNet R50 512x512 80k ADE20K, DeepAugment+AugMix ImageNet ResNet-50; full-network transfer.
# Recipe and backbone checkpoint: ../upernet/upernet_r50_512x512_80k_ade20k_deepaug_augmix.py
# (unchanged). The only change is the data preprocessor: PRIME on the training images, before
# normalisation (the inner preprocessor is the base config's), never at validation or test time.
# Settings: ./_base_/prime_transfer.py.
_base_ = [
    '../upernet/upernet_r50_512x512_80k_ade20k_deepaug_augmix.py',
    './_base_/prime_transfer.py',
]
custom_imports = dict(
    imports=['robust_transfer.openmmlab.mmseg',
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
