# PRIME settings of the transfer experiments (Yamada & Otani, CVPR 2022): colour (cut-off 500,
# T 0.05, band of 20 frequencies) + random filter (3x3, sigma 4.0), mixture width 3, depth 1,
# no JSD, no diffeomorphism -- the defaults of robust_transfer.augment.PRIME, spelled out here.
# dict(preset='imagenet') gives the PRIME paper's ImageNet settings instead (+ diffeomorphism,
# depth up to 3). Used by the *_prime_while_finetune_* configs of this folder through
# PRIMEDataPreprocessor (robust_transfer/openmmlab/prime_preprocessor.py); see docs/prime.md.
prime = dict(
    width=3, depth=1,
    color=True, color_cut=500, color_temperature=0.05, color_bandwidth=20,
    filter=True, filter_kernel_size=3, filter_sigma=4.0,
    diffeo=False)
prime_seed = 0  # the augmentation stream: seeded by (prime_seed, rank, iteration)
