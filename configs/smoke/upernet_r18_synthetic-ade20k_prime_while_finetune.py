# Smoke / demo segmentation model, full-network transfer with PRIME on the training images: the
# paper's *_prime_while_finetune_* change (mmsegmentation/configs/prime/) on the smoke model, with
# the same PRIME settings (mmsegmentation/configs/prime/_base_/prime_transfer.py).
_base_ = [
    './upernet_r18_synthetic-ade20k.py',
    '../../mmsegmentation/configs/prime/_base_/prime_transfer.py',
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
transfer = dict(augmentation='prime')
