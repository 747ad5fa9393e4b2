"""Per-severity parameter tables of the 19 corruptions, shared by the numpy and torch backends.

The values are imagecorruptions 1.1.2's (and so ImageNet-C's). Every table is indexed by
``severity - 1``. Both backends import their parameters from here, so they cannot drift apart.
"""
from __future__ import annotations

import numpy as np

GAUSSIAN_NOISE_STD = (0.08, 0.12, 0.18, 0.26, 0.38)
SHOT_NOISE_PHOTONS = (60, 25, 12, 5, 3)
IMPULSE_NOISE_AMOUNT = (0.03, 0.06, 0.09, 0.17, 0.27)
SPECKLE_NOISE_STD = (0.15, 0.2, 0.35, 0.45, 0.6)
GAUSSIAN_BLUR_SIGMA = (1, 2, 3, 4, 6)
# (sigma, max_delta, iterations)
GLASS_BLUR_PARAMS = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))
# (disk radius, anti-alias blur sigma)
DEFOCUS_BLUR_PARAMS = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))
# (radius, sigma) of the one-sided Gaussian motion kernel
MOTION_BLUR_PARAMS = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))
MOTION_BLUR_ANGLE_RANGE = (-45, 45)
ZOOM_BLUR_FACTORS = (
    np.arange(1, 1.11, 0.01),
    np.arange(1, 1.16, 0.01),
    np.arange(1, 1.21, 0.02),
    np.arange(1, 1.26, 0.02),
    np.arange(1, 1.31, 0.03),
)
# (fog strength, plasma wibble decay)
FOG_PARAMS = ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))
# (image weight, frost weight)
FROST_PARAMS = ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))
# The reference draws randint(5): the sixth texture is never used.
FROST_TEXTURES_DRAWN = 5
# (flake mean, flake std, zoom, threshold, motion radius, motion sigma, image weight)
SNOW_PARAMS = (
    (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
    (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
    (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
    (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
    (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
)
SNOW_ANGLE_RANGE = (-135, -45)
# (liquid mean, liquid std, liquid blur sigma, threshold, colour strength or mud blur, is_mud)
SPATTER_PARAMS = (
    (0.65, 0.3, 4, 0.69, 0.6, 0),
    (0.65, 0.3, 3, 0.68, 0.6, 0),
    (0.65, 0.3, 2, 0.68, 0.5, 0),
    (0.65, 0.3, 1, 0.65, 1.5, 1),
    (0.67, 0.4, 1, 0.65, 1.5, 1),
)
# Colours in the channel order the reference adds them to the RGB image. (The reference names
# the water colour in BGR but adds it to RGB data; we keep what it computes.)
SPATTER_WATER_COLOUR = (175 / 255.0, 238 / 255.0, 238 / 255.0)
SPATTER_MUD_COLOUR = (63 / 255.0, 42 / 255.0, 20 / 255.0)
CONTRAST_FACTOR = (0.4, 0.3, 0.2, 0.1, 0.05)
BRIGHTNESS_SHIFT = (0.1, 0.2, 0.3, 0.4, 0.5)
# (saturation factor, saturation offset)
SATURATE_PARAMS = ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))
JPEG_QUALITY = (25, 18, 15, 10, 7)
PIXELATE_SCALE = (0.6, 0.5, 0.4, 0.3, 0.25)
ELASTIC_ALPHA = (250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12)
ELASTIC_SIGMA_FRACTION = 0.01  # of the image height / width
ELASTIC_MAX_SHIFT_FRACTION = 0.005  # of the image height, for both axes (as the reference)
ELASTIC_TRUNCATE = 3
