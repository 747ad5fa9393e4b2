"""The 19 ImageNet-C corruptions in torch: the fast, batched backend (CPU or GPU).

Same algorithms and per-severity parameters (``_params``) as the numpy reference; every function
follows the torch registry contract (``_registry``): float32 (N, 3, H, W) values in [0, 255] on
any device, one Philox stream per image, result clipped to [0, 255]. The front doors
are ``corrupt_batch`` (tensors) and ``corrupt(..., backend="torch")`` (one numpy image) in
``robust_transfer.corruptions``; docs/corruptions.md lists the measured fidelity and the
differences from the reference.

Random numbers: image i draws from its Philox 4x32-10 stream keyed by (seed, keys[i],
corruption, severity) (``_philox``), computed on the images' device in integer tensor ops: the
same draws on the CPU and on CUDA (seed scheme ``TORCH_SEED_SCHEME``). They are not the numpy
backend's numbers (another generator), so random corruptions agree with the reference in
distribution, deterministic ones pixel for pixel.
"""
from __future__ import annotations

import itertools
import numbers
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO

import numpy as np
import torch
from PIL import Image

from . import MIN_IMAGE_SIDE
from . import _helpers as H
from . import _torch_ops as T
from ._groups import ALL
from ._numpy import water_spatter_mask
from ._params import (
    BRIGHTNESS_SHIFT,
    CONTRAST_FACTOR,
    DEFOCUS_BLUR_PARAMS,
    ELASTIC_ALPHA,
    ELASTIC_MAX_SHIFT_FRACTION,
    ELASTIC_SIGMA_FRACTION,
    ELASTIC_TRUNCATE,
    FOG_PARAMS,
    FROST_PARAMS,
    FROST_TEXTURES_DRAWN,
    GAUSSIAN_BLUR_SIGMA,
    GAUSSIAN_NOISE_STD,
    GLASS_BLUR_PARAMS,
    IMPULSE_NOISE_AMOUNT,
    JPEG_QUALITY,
    MOTION_BLUR_ANGLE_RANGE,
    MOTION_BLUR_PARAMS,
    PIXELATE_SCALE,
    SATURATE_PARAMS,
    SHOT_NOISE_PHOTONS,
    SNOW_ANGLE_RANGE,
    SNOW_PARAMS,
    SPATTER_MUD_COLOUR,
    SPATTER_PARAMS,
    SPATTER_WATER_COLOUR,
    SPECKLE_NOISE_STD,
    ZOOM_BLUR_FACTORS,
)
from ._philox import PhiloxStreams, stream_key
from ._registry import get_torch_corruption, register_torch_corruption, registered_torch_corruptions
from ._seeding import canonical_key, check_seed

# ----------------------------------------------------------------------------- CPU work per image


def _map_images(fn, count: int) -> list:
    """[fn(0), ..., fn(count-1)] for CPU-only per-image work (JPEG coding, OpenCV), in up to
    ``torch.get_num_threads()`` threads: libjpeg and OpenCV release the GIL, so the threads run
    in parallel. No draw happens inside, so the threading cannot change a result."""
    workers = min(count, torch.get_num_threads(), os.cpu_count() or 1)
    if workers <= 1:
        return [fn(i) for i in range(count)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, range(count)))


# ----------------------------------------------------------------------------- samplers

# Every random number goes through one of the samplers below; each is one draw call of the
# batch's Philox streams and returns (N, ...) on the streams' device (tests replay the
# reference's RandomState through them to check each corruption with the reference's draws).


def _randn(rng: PhiloxStreams, shape) -> torch.Tensor:
    """Standard normal numbers, (N, *shape)."""
    return rng.normal(shape)


def _rand(rng: PhiloxStreams, shape) -> torch.Tensor:
    """Uniform numbers in [0, 1), (N, *shape)."""
    return rng.uniform(shape)


def _pixel_randn(rng: PhiloxStreams, shape) -> torch.Tensor:
    """Standard normal noise for images of ``shape`` (3, H, W)."""
    return rng.normal(shape)


def _pixel_rand(rng: PhiloxStreams, shape) -> torch.Tensor:
    """Uniform [0, 1) noise for images of ``shape`` (3, H, W)."""
    return rng.uniform(shape)


def _randint_array(rng: PhiloxStreams, low: int, high: int, shape) -> torch.Tensor:
    """Integers in [low, high), (N, *shape)."""
    return rng.integers(low, high, shape)


def _uniform_scalar(rng: PhiloxStreams, low: float, high: float) -> list[float]:
    """One uniform number in [low, high) per image (float64), as Python floats."""
    return (low + (high - low) * rng.uniform((), dtype=torch.float64)).tolist()


def _randint(rng: PhiloxStreams, high, low: int = 0) -> list[int]:
    """One integer in [low, high) per image; ``high`` may differ per image (a sequence)."""
    return rng.integers(low, high).tolist()


def _poisson(rng: PhiloxStreams, levels: torch.Tensor, photons: float) -> torch.Tensor:
    """Poisson counts of rate ``levels / 255 * photons`` per value (exact in distribution)."""
    return rng.poisson_uint8_levels(levels, photons)


def _unit_to_255(x: torch.Tensor) -> torch.Tensor:
    return x.clamp_(0, 1).mul_(255)


# ----------------------------------------------------------------------------- noise


@register_torch_corruption
def gaussian_noise(x, severity, rng):
    """Additive Gaussian noise on [0, 1] intensities."""
    noise = _pixel_randn(rng, x.shape[1:]) * GAUSSIAN_NOISE_STD[severity - 1]
    return _unit_to_255(noise.add_(x / 255))


@register_torch_corruption
def shot_noise(x, severity, rng):
    """Poisson (photon) noise: counts of rate x / 255 * photons, exact inversion on the device
    (``PhiloxStreams.poisson_uint8_levels``)."""
    photons = SHOT_NOISE_PHOTONS[severity - 1]
    drawn = _poisson(rng, x, photons).to(torch.float32)
    return _unit_to_255(drawn.div_(photons))


@register_torch_corruption
def impulse_noise(x, severity, rng):
    """Salt and pepper: each value hit with probability ``amount``, then 1 or 0 with probability
    1/2 each (scikit-image 0.26's distribution, one uniform draw per value, as the numpy
    backend)."""
    amount = IMPULSE_NOISE_AMOUNT[severity - 1]
    uniform = _pixel_rand(rng, x.shape[1:])
    # Hit values become pepper, then the salt half of them (uniform < amount / 2) salt: two
    # masked fills instead of two wheres and a range test over the whole batch.
    return x.masked_fill(uniform < amount, 0.0).masked_fill_(uniform < amount / 2, 255.0)


@register_torch_corruption
def speckle_noise(x, severity, rng):
    """Multiplicative Gaussian noise: x + x * N(0, c)."""
    unit = x / 255
    noise = _pixel_randn(rng, x.shape[1:]) * SPECKLE_NOISE_STD[severity - 1]
    return _unit_to_255(noise.mul_(unit).add_(unit))


# ----------------------------------------------------------------------------- blur


@register_torch_corruption
def gaussian_blur(x, severity, rng):
    """Gaussian blur of each channel (scipy's filter, mode 'nearest', 4 sigma)."""
    return _unit_to_255(T.gaussian_filter(x / 255, GAUSSIAN_BLUR_SIGMA[severity - 1]))


@register_torch_corruption
def glass_blur(x, severity, rng):
    """Blur, quantise to 8 bits, shuffle pixels locally (the reference's sequential shuffle,
    resolved exactly in parallel by ``glass_shuffle_sources``), blur again."""
    sigma, max_delta, iterations = GLASS_BLUR_PARAMS[severity - 1]
    count, channels, height, width = x.shape
    blurred = torch.trunc(T.gaussian_filter(x / 255, sigma) * 255).clamp_(0, 255)
    shape = (iterations, max(0, height - 2 * max_delta), max(0, width - 2 * max_delta), 2)
    draws = _randint_array(rng, -max_delta, max_delta, shape)
    sources = T.glass_shuffle_sources(height, width, max_delta, draws)
    shuffled = torch.gather(blurred.reshape(count, channels, -1), 2,
                            sources[:, None, :].expand(-1, channels, -1)).reshape(x.shape)
    return _unit_to_255(T.gaussian_filter(shuffled / 255, sigma))


@register_torch_corruption
def defocus_blur(x, severity, rng):
    """Convolution with the reference's anti-aliased disk (OpenCV border REFLECT_101)."""
    radius, alias_blur = DEFOCUS_BLUR_PARAMS[severity - 1]
    return _unit_to_255(T.filter2d_reflect101(x / 255, H.disk_kernel(radius, alias_blur)))


@register_torch_corruption
def motion_blur(x, severity, rng):
    """Linear motion blur, each image at its own random angle in [-45, 45) degrees."""
    radius, sigma = MOTION_BLUR_PARAMS[severity - 1]
    angles = _uniform_scalar(rng, *MOTION_BLUR_ANGLE_RANGE)
    return T.motion_blur(x, radius, sigma, angles).clamp_(0, 255)


@register_torch_corruption
def zoom_blur(x, severity, rng):
    """Average of the image and centre zooms of it (radial blur)."""
    factors = ZOOM_BLUR_FACTORS[severity - 1]
    # Channels-last: torch's bilinear resize of a cropped view is ~3x faster in this layout.
    unit = (x / 255).contiguous(memory_format=torch.channels_last)
    accumulated = torch.zeros_like(unit)
    for factor in factors:
        accumulated += T.clipped_zoom(unit, factor, crop_to_input=True)
    return _unit_to_255((unit + accumulated) / (len(factors) + 1)).contiguous()


# ----------------------------------------------------------------------------- weather


@register_torch_corruption
def snow(x, severity, rng):
    """Snow flakes (thresholded, zoomed noise, motion-blurred) over a brightened image."""
    mean, std, zoom, threshold, radius, sigma, image_weight = SNOW_PARAMS[severity - 1]
    height, width = x.shape[-2:]
    flakes = _randn(rng, (1, height, width)).mul_(std).add_(mean)
    angles = _uniform_scalar(rng, *SNOW_ANGLE_RANGE)
    # As the reference: blur the whole zoomed layer (larger than the image), crop afterwards.
    flakes = T.clipped_zoom(flakes, zoom, crop_to_input=False)
    flakes = torch.where(flakes < threshold, 0.0, flakes).clamp_(0, 1)
    flakes = T.motion_blur(flakes, radius, sigma, angles)
    flakes = torch.round(flakes * 255) / 255  # the reference quantises the layer to 8 bits
    flakes = flakes[..., :height, :width]

    unit = x / 255
    grey = 0.299 * unit[:, 0:1] + 0.587 * unit[:, 1:2] + 0.114 * unit[:, 2:3]  # cv2 RGB2GRAY
    unit = image_weight * unit + (1 - image_weight) * torch.maximum(unit, grey * 1.5 + 0.5)
    return _unit_to_255(unit + flakes + torch.flip(flakes, dims=(-2, -1)))


@register_torch_corruption
def frost(x, severity, rng):
    """Blend with a random crop of a photograph of frost on glass (the reference's textures,
    enlarged by the same cv2.resize, cached per image size and device)."""
    image_weight, frost_weight = FROST_PARAMS[severity - 1]
    height, width = x.shape[-2:]
    indices = _randint(rng, [FROST_TEXTURES_DRAWN] * rng.count)
    textures = [_frost_texture(index, height, width, str(x.device)) for index in indices]
    tops = _randint(rng, [texture.shape[1] - height for texture in textures])
    lefts = _randint(rng, [texture.shape[2] - width for texture in textures])
    out = _frost_crops(indices, tops, lefts, height, width, x.device).mul_(frost_weight)
    return out.add_(x, alpha=image_weight).clamp_(0, 255)


def _frost_crops(indices, tops, lefts, height: int, width: int, device,
                 gather=None) -> torch.Tensor:
    """(N, 3, height, width): texture indices[i] cropped at (tops[i], lefts[i]). On a GPU all
    images in one gather from the stacked textures (one kernel instead of one copy per image);
    on the CPU a copy of each crop is cheaper than building the gather's indices. ``gather``
    (True/False) overrides that choice."""
    stacked = _frost_stack(height, width, str(device))
    if not (torch.device(device).type != "cpu" if gather is None else gather):
        return torch.stack([stacked[index, :, top:top + height, left:left + width]
                            for index, top, left in zip(indices, tops, lefts)])
    count = len(indices)
    pick = torch.tensor(indices, device=device).view(count, 1, 1, 1)
    rows = (torch.tensor(tops, device=device).view(count, 1)
            + torch.arange(height, device=device)).view(count, 1, height, 1)
    cols = (torch.tensor(lefts, device=device).view(count, 1)
            + torch.arange(width, device=device)).view(count, 1, 1, width)
    channels = torch.arange(3, device=device).view(1, 3, 1, 1)
    return stacked[pick, channels, rows, cols]


def _frost_stack(height: int, width: int, device: str) -> torch.Tensor:
    """The drawable textures enlarged for height x width, zero-padded to a common size and
    stacked, (FROST_TEXTURES_DRAWN, 3, h, w) on ``device`` (cached; crops stay inside each
    texture's own area, so the padding is never read)."""
    cache_key = ("stack", height, width, device)
    if cache_key not in _FROST_CACHE:
        textures = [_frost_texture(index, height, width, device)
                    for index in range(FROST_TEXTURES_DRAWN)]
        stacked = torch.zeros((len(textures), 3) + tuple(max(t.shape[d] for t in textures)
                                                         for d in (1, 2)), device=device)
        for index, texture in enumerate(textures):
            stacked[index, :, :texture.shape[1], :texture.shape[2]] = texture
        _FROST_CACHE[cache_key] = stacked
    return _FROST_CACHE[cache_key]


_FROST_CACHE: dict = {}


def _frost_texture(index: int, height: int, width: int, device: str) -> torch.Tensor:
    """Enlarged frost texture ``index`` as float32 (3, h, w) on ``device`` (cached)."""
    texture = H.frost_texture_for_image(index, height, width)  # checks the package every call
    cache_key = (index, height, width, device)
    if cache_key not in _FROST_CACHE:
        if len(_FROST_CACHE) >= 4 * len(H.FROST_TEXTURE_FILES):
            _FROST_CACHE.clear()
        tensor = torch.from_numpy(np.ascontiguousarray(texture.transpose(2, 0, 1)))
        _FROST_CACHE[cache_key] = tensor.to(device=device, dtype=torch.float32)
    return _FROST_CACHE[cache_key]


@register_torch_corruption
def fog(x, severity, rng):
    """Add a plasma-fractal haze (batched diamond-square in torch) and rescale so the brightest
    value keeps its level."""
    strength, wibble_decay = FOG_PARAMS[severity - 1]
    height, width = x.shape[-2:]
    map_size = H.next_power_of_two(int(max(height, width, 3)))
    haze = T.plasma_fractal(map_size, wibble_decay,
                            lambda shape: _rand(rng, shape))
    unit = x / 255
    max_val = unit.amax(dim=(1, 2, 3), keepdim=True)
    unit = unit + strength * haze[:, None, :height, :width]
    return _unit_to_255(unit * max_val / (max_val + strength))


def _hsv_value(unit: torch.Tensor):
    """HSV value (max) and max - min over the channels, (N, 1, H, W) each."""
    value = unit.amax(dim=1, keepdim=True)
    return value, value - unit.amin(dim=1, keepdim=True)


@register_torch_corruption
def brightness(x, severity, rng):
    """Raise the HSV value channel, in closed form: with hue and saturation fixed, RGB scales
    with the value, so rgb' = v' - (v - rgb) v' / v (black pixels become grey v'). Equals
    scikit-image's rgb2hsv -> hsv2rgb round trip up to float rounding."""
    unit = x / 255
    value, _ = _hsv_value(unit)
    new_value = (value + BRIGHTNESS_SHIFT[severity - 1]).clamp_(0, 1)
    ratio = new_value / torch.where(value > 0, value, 1.0)
    out = torch.where(value > 0, new_value - (value - unit) * ratio, new_value)
    return _unit_to_255(out)


@register_torch_corruption
def spatter(x, severity, rng):
    """Water drops (severities 1-3) or mud (4-5). The liquid layer and mud are torch; the water
    drops' shading (Canny edges, distance transform, histogram equalisation, emboss) is the
    numpy backend's OpenCV code on the CPU, the images in parallel threads: Canny's hysteresis
    and OpenCV's chamfer distance have no exact tensor equivalent (docs/corruptions.md)."""
    mean, std, blur, threshold, strength, is_mud = SPATTER_PARAMS[severity - 1]
    height, width = x.shape[-2:]
    liquid = _randn(rng, (1, height, width)).mul_(std).add_(mean)
    liquid = T.gaussian_filter(liquid, blur)
    liquid = torch.where(liquid < threshold, 0.0, liquid)
    unit = x / 255
    if is_mud:
        mask = T.gaussian_filter((liquid > threshold).float(), strength)
        mask = torch.where(mask < 0.8, 0.0, mask)
        mud = torch.tensor(SPATTER_MUD_COLOUR, device=x.device).view(1, 3, 1, 1)
        return _unit_to_255(unit * (1 - mask) + mud * mask)
    layers = liquid[:, 0].cpu().numpy().astype(np.float64)
    masks = _map_images(lambda i: water_spatter_mask(layers[i], strength), len(layers))
    mask = torch.from_numpy(np.stack(masks)).to(x.device)[:, None]
    water = torch.tensor(SPATTER_WATER_COLOUR, device=x.device).view(1, 3, 1, 1)
    return _unit_to_255(unit + mask * water)


# ----------------------------------------------------------------------------- digital


@register_torch_corruption
def contrast(x, severity, rng):
    """Pull every channel towards its mean."""
    unit = x / 255
    means = unit.mean(dim=(2, 3), keepdim=True)
    return _unit_to_255((unit - means) * CONTRAST_FACTOR[severity - 1] + means)


@register_torch_corruption
def elastic_transform(x, severity, rng):
    """Smooth random displacement field (uniform noise, Gaussian filter with scipy's 'reflect'
    border and 3 sigma) applied by bilinear resampling with scipy's 'reflect' border."""
    height, width = x.shape[-2:]
    sigma = (height * ELASTIC_SIGMA_FRACTION, width * ELASTIC_SIGMA_FRACTION)
    alpha = ELASTIC_ALPHA[severity - 1]
    max_shift = height * ELASTIC_MAX_SHIFT_FRACTION
    fields = _rand(rng, (2, height, width))  # dx, then dy
    fields = fields.mul_(2 * max_shift).sub_(max_shift)
    fields = T.gaussian_filter(fields, sigma, mode="reflect", truncate=ELASTIC_TRUNCATE) * alpha
    warped = T.remap_bilinear_reflect(x / 255, fields[:, 1], fields[:, 0])
    return _unit_to_255(warped)


def _uint8_in_out(fn):
    """Mark a corruption that works on 8-bit images: it receives and returns uint8 (N, 3, H, W)
    tensors (float inputs are rounded to 8 bits before, as the reference's input is uint8)."""
    fn.uint8_in_out = True
    return fn


@register_torch_corruption
@_uint8_in_out
def pixelate(x, severity, rng):
    """Pillow's BOX downsample and NEAREST upsample: on the CPU Pillow itself, one image per
    task in the CPU threads (about 2x faster than the tensor form here); elsewhere the
    bit-exact torch re-implementation. The same bytes either way (tested)."""
    scale = PIXELATE_SCALE[severity - 1]
    height, width = x.shape[-2:]
    small_size = (int(width * scale), int(height * scale))
    if x.device.type != "cpu":
        return T.pil_pixelate(x, small_size)
    return _pillow_per_image(x, lambda image: np.asarray(
        Image.fromarray(image).resize(small_size, Image.BOX).resize((width, height),
                                                                    Image.NEAREST)))


def _pillow_per_image(x: torch.Tensor, fn) -> torch.Tensor:
    """(N, 3, H, W) uint8 through ``fn`` ((H, W, 3) uint8 array -> same) one image per task in
    the CPU threads (Pillow releases the GIL), with one layout copy of the batch each way."""
    images = x.permute(0, 2, 3, 1).contiguous().cpu().numpy()
    out = np.stack(_map_images(lambda i: fn(images[i]), len(images)))
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(x.device).contiguous()


@register_torch_corruption
@_uint8_in_out
def jpeg_compression(x, severity, rng):
    """Encode and decode as JPEG with Pillow (as the reference): one image per task in a pool of
    CPU threads (libjpeg releases the GIL), the same bytes as Pillow. On a CUDA device whose
    torchvision encodes and decodes JPEG on the GPU within the stated bound of Pillow
    (:func:`gpu_jpeg_usable`), nvjpeg instead."""
    quality = JPEG_QUALITY[severity - 1]
    if x.device.type == "cuda" and gpu_jpeg_usable(x.device):
        return _gpu_jpeg(x, quality)
    return _pillow_per_image(x, lambda image: pil_jpeg(image, quality))


def pil_jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """(H, W, 3) uint8 through Pillow's JPEG encoder and decoder (the reference's codec)."""
    buffer = BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.array(decoded.convert("RGB"))


# nvjpeg is used only when its result stays this close to Pillow's on the probe image at every
# JPEG_QUALITY: mean |difference| in grey levels, and the largest difference. (libjpeg and nvjpeg
# round the DCT and the colour conversion differently; Pillow's bytes are the reference.)
GPU_JPEG_MAX_MEAN_LEVELS = 0.5
GPU_JPEG_MAX_LEVELS = 8
GPU_JPEG_VARIABLE = "RT_GPU_JPEG"  # "0" turns the GPU path off
_GPU_JPEG_PROBED: dict = {}


def _gpu_jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    from torchvision.io import decode_jpeg, encode_jpeg

    encoded = encode_jpeg(list(x.unbind(0)), quality=quality)
    decoded = decode_jpeg(encoded, device=x.device)
    return torch.stack(decoded).contiguous()


def _jpeg_probe_image() -> np.ndarray:
    """A fixed 96x128 RGB test image with smooth gradients, edges and fine texture."""
    yy, xx = np.mgrid[0:96, 0:128].astype(np.float64)
    texture = np.sin(xx * 0.9) * np.cos(yy * 0.7) * 40
    image = np.stack([xx * 2, yy * 2.5, (xx + yy) + texture + 60], axis=-1)
    image[30:60, 40:90] = (220, 40, 30)
    return np.clip(image, 0, 255).astype(np.uint8)


def gpu_jpeg_usable(device: torch.device) -> bool:
    """Whether this machine's torchvision codes JPEG on ``device`` within the stated bound of
    Pillow (probed once per device; any error -- e.g. "Input tensor must be a CPU tensor" from a
    torchvision built without GPU encoding -- means no)."""
    key = str(device)
    if key not in _GPU_JPEG_PROBED:
        usable = os.environ.get(GPU_JPEG_VARIABLE, "1") != "0"
        try:
            probe = _jpeg_probe_image()
            batch = torch.from_numpy(probe).permute(2, 0, 1)[None].to(device)
            for quality in JPEG_QUALITY if usable else ():
                diff = np.abs(_gpu_jpeg(batch, quality)[0].permute(1, 2, 0).cpu().numpy()
                              .astype(np.int16) - pil_jpeg(probe, quality).astype(np.int16))
                if diff.mean() > GPU_JPEG_MAX_MEAN_LEVELS or diff.max() > GPU_JPEG_MAX_LEVELS:
                    usable = False
        except Exception:  # noqa: BLE001 -- any failure of the optional GPU codec: use Pillow
            usable = False
        _GPU_JPEG_PROBED[key] = usable
    return _GPU_JPEG_PROBED[key]


def _saturation_closed_form(unit: torch.Tensor, factor: float, offset: float) -> torch.Tensor:
    """hsv2rgb(h, clip(s * factor + offset, 0, 1), v) of rgb2hsv(unit), in closed form.

    With hue and value fixed, every channel is v - s * v * k(hue): so for coloured pixels
    rgb' = v - s' v (v - rgb) / (v - min). Grey pixels (v == min) have hue 0 in scikit-image,
    so they become (v, v (1 - s'), v (1 - s')).
    """
    value, spread = _hsv_value(unit)
    saturation = torch.where(value > 0, spread / torch.where(value > 0, value, 1.0), 0.0)
    saturation = torch.where(spread > 0, saturation, 0.0)
    new_saturation = (saturation * factor + offset).clamp_(0, 1)
    safe_spread = torch.where(spread > 0, spread, 1.0)
    coloured = value - new_saturation * value * (value - unit) / safe_spread
    grey_rest = value * (1 - new_saturation)
    grey = torch.cat([value, grey_rest, grey_rest], dim=1)
    return torch.where(spread > 0, coloured, grey)


@register_torch_corruption
def saturate(x, severity, rng):
    """Scale (and offset) the HSV saturation (closed form, see ``_saturation_closed_form``)."""
    factor, offset = SATURATE_PARAMS[severity - 1]
    return _unit_to_255(_saturation_closed_form(x / 255, factor, offset))


if set(registered_torch_corruptions()) != set(ALL):
    raise ImportError(f"torch corruptions {registered_torch_corruptions()} differ from {ALL}")


# ----------------------------------------------------------------------------- front doors


def _check_value_range(images: torch.Tensor, value_range):
    if images.dtype == torch.uint8:
        if value_range not in (None, 255, 255.0):
            raise ValueError(f"uint8 images have values 0..255; value_range must be None or 255, "
                             f"got {value_range!r}")
        return 255.0
    if not images.dtype.is_floating_point:
        raise ValueError(f"images must be uint8 or floating point, got {images.dtype}; convert "
                         "first, e.g. images.clamp(0, 255).round().to(torch.uint8)")
    if value_range is None:
        raise ValueError(f"floating-point images ({images.dtype}) need value_range: 1.0 for "
                         "values in [0, 1], 255.0 for values in [0, 255] (it is never guessed)")
    if (isinstance(value_range, bool) or not isinstance(value_range, numbers.Real)
            or not value_range > 0):
        raise ValueError(f"value_range must be a positive number, got {value_range!r}")
    if images.numel():
        low, high = torch.aminmax(images.detach())
        if not (float(low) >= 0 and float(high) <= float(value_range) * (1 + 1e-6)):
            raise ValueError(f"image values must lie in [0, {value_range}] (value_range), got "
                             f"[{float(low):g}, {float(high):g}]; normalised images must be "
                             "corrupted before normalisation")
    return float(value_range)


def _check_batch(images) -> tuple[int, int, int, int]:
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images must be a torch.Tensor of shape (N, C, H, W), got "
                         f"{type(images).__name__}; for one numpy image use "
                         "corrupt(image, name, severity, backend='torch')")
    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
    count, channels, height, width = images.shape
    if channels not in (1, 3, 4):
        raise ValueError(f"images must have 1 (grey), 3 (RGB) or 4 (RGBA) channels, got "
                         f"{channels} (shape {tuple(images.shape)}; channels come second)")
    if min(height, width) < MIN_IMAGE_SIDE:
        raise ValueError(f"images must be at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} pixels, got "
                         f"{height}x{width}")
    return count, channels, height, width


def _stream_keys(seed, keys, count: int, name: str, severity: int) -> list[tuple[int, int]]:
    """The Philox key of every image: (seed, keys[i], corruption, severity) hashed."""
    check_seed(seed)
    if keys is None:
        keys = list(range(count))
    elif isinstance(keys, (str, bytes)) or not hasattr(keys, "__len__"):
        raise ValueError(f"keys must be a sequence of {count} keys (None, str or int each), got "
                         f"{type(keys).__name__}")
    else:
        keys = list(keys.tolist() if isinstance(keys, (torch.Tensor, np.ndarray)) else keys)
        if len(keys) != count:
            raise ValueError(f"keys must have one key per image: got {len(keys)} keys for "
                             f"{count} images")
    return [stream_key(seed, canonical_key(key), name, severity) for key in keys]


def corrupt_tensor(images: torch.Tensor, name: str, severity: int, *, seed: int = 0, keys=None,
                   value_range=None) -> torch.Tensor:
    """The work behind ``corrupt_batch`` (name and severity already validated).

    On the CPU with T > 1 torch threads, the batch is split into up to T parts corrupted by the
    calling thread and T - 1 pool threads with one intra-op thread each, then joined (the bytes do not change: every
    image has its own stream and the kernels are batch-invariant). Why: an op split over T
    threads waits for all of them at its end, so on a shared machine, where a thread can lose
    its core for a scheduler slice, a corruption made of many short ops ran several times
    slower on 2 threads than on 1; whole sub-batches wait only once. T is capped by the cores
    the load average leaves free (:func:`usable_cpu_threads`).
    """
    count, channels, _, _ = _check_batch(images)
    scale = _check_value_range(images, value_range)
    stream_keys = _stream_keys(seed, keys, count, name, severity)
    if count == 0:
        return images.clone()
    if images.device.type != "cpu":
        return _corrupt_batch(images, name, severity, scale, stream_keys)
    threads = usable_cpu_threads(torch.get_num_threads())
    if count == 1 or threads == 1:
        return _with_intra_op_threads(threads, lambda: _corrupt_batch(
            images, name, severity, scale, stream_keys))
    workers = min(count, threads)
    parts = [part.tolist() for part in np.array_split(np.arange(count), workers)]
    outputs = _share_parts(parts, lambda part: _corrupt_batch(
        images[part[0]:part[-1] + 1], name, severity, scale, stream_keys[part[0]:part[-1] + 1]))
    return torch.cat(outputs)


def usable_cpu_threads(threads: int) -> int:
    """How many of ``threads`` CPU threads can get a core of their own now: the cores minus the
    1-minute load average (which counts this thread), at least 1 -- what OpenMP's dynamic
    mode (OMP_DYNAMIC) does with libgomp. A thread without a core of its own only makes the
    others wait for it; the bytes do not depend on the choice."""
    if threads <= 1:
        return 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        return threads
    cores = os.cpu_count() or threads
    free = cores - load + 1
    return max(1, min(threads, cores, int(free + 0.5)))


def _with_intra_op_threads(threads: int, work):
    """work() with ``threads`` intra-op threads in the calling thread (OpenMP's setting is per
    thread), the previous setting restored afterwards."""
    previous = torch.get_num_threads()
    if threads == previous:
        return work()
    torch.set_num_threads(threads)
    try:
        return work()
    finally:
        torch.set_num_threads(previous)


def _share_parts(parts: list, work) -> list:
    """[work(part) for part in parts], the parts taken in turn by the calling thread and by
    len(parts) - 1 pool threads, each with one intra-op thread. The caller never waits for a
    part nobody has started: on a busy machine a pool thread may take milliseconds to be
    scheduled, and then the caller simply does more parts itself."""
    results: list = [None] * len(parts)
    finished = [threading.Event() for _ in parts]
    counter = itertools.count()  # next() is atomic in CPython: each part is taken once

    def take_parts():
        while (index := next(counter)) < len(parts):
            try:
                results[index] = (True, work(parts[index]))
            except BaseException as error:  # noqa: BLE001 -- re-raised in the caller
                results[index] = (False, error)
            finally:
                finished[index].set()

    pool = _cpu_pool(len(parts) - 1)
    for _ in range(len(parts) - 1):
        pool.submit(take_parts)
    _with_intra_op_threads(1, take_parts)
    for event in finished:
        event.wait()
    for ok, value in results:
        if not ok:
            raise value
    return [value for _, value in results]


_CPU_POOLS: dict = {}


def _cpu_pool(workers: int) -> ThreadPoolExecutor:
    """A pool of ``workers`` threads that each run torch ops on one intra-op thread, kept for
    the process (a new thread would build a new OpenMP team on its first op: milliseconds per
    call). Keyed by process id too: threads do not survive a fork, so a forked child (a data
    loader worker) gets its own pool instead of one that would never run its tasks."""
    key = (os.getpid(), workers)
    if key not in _CPU_POOLS:
        _CPU_POOLS[key] = ThreadPoolExecutor(max_workers=workers, initializer=torch.set_num_threads,
                                             initargs=(1,), thread_name_prefix="corrupt-cpu")
    return _CPU_POOLS[key]


def _corrupt_batch(images: torch.Tensor, name: str, severity: int, scale: float,
                   stream_keys) -> torch.Tensor:
    """Corrupt a validated batch in the calling thread (see :func:`corrupt_tensor`)."""
    channels = images.shape[1]
    rng = PhiloxStreams(stream_keys, images.device)
    rgb = images[:, :3] if channels != 1 else images.expand(-1, 3, -1, -1)
    fn = get_torch_corruption(name)
    with torch.no_grad(), T.full_float32_matmul(images.device):
        if getattr(fn, "uint8_in_out", False):
            if images.dtype != torch.uint8:
                rgb = torch.round(rgb.to(torch.float32) * (255.0 / scale)).clamp_(0, 255)
            out = fn(rgb.to(torch.uint8).contiguous(), severity, rng)
            if images.dtype != torch.uint8:
                out = (out.to(torch.float32) * (scale / 255.0)).to(images.dtype)
        else:
            x = rgb.to(torch.float32)
            if scale != 255.0:
                x = x * (255.0 / scale)
            out = fn(x.contiguous(), severity, rng)
            if images.dtype == torch.uint8:
                out = out.to(torch.uint8)  # truncation, as the reference's np.uint8(...)
            else:
                out = (out * (scale / 255.0) if scale != 255.0 else out).to(images.dtype)
    if channels == 1:
        return out[:, :1].contiguous()
    if channels == 4:
        return torch.cat([out, images[:, 3:]], dim=1)
    return out


def corrupt_rgb_array(image: np.ndarray, name: str, severity: int, *, seed: int = 0,
                      key=None) -> np.ndarray:
    """One validated (H, W, 3) uint8 image through the torch backend on the CPU."""
    batch = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1)[None]
    out = corrupt_tensor(batch, name, severity, seed=seed, keys=[key])
    return out[0].permute(1, 2, 0).contiguous().numpy()
