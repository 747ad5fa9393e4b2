"""The 19 ImageNet-C corruptions in torch: the fast, batched backend (CPU or GPU).

Same algorithms and per-severity parameters (``_params``) as the numpy reference; every function
follows the torch registry contract (``_registry``): float32 (N, 3, H, W) values in [0, 255] on
any device, one seeded ``torch.Generator`` per image, result clipped to [0, 255]. The front doors
are ``corrupt_batch`` (tensors) and ``corrupt(..., backend="torch")`` (one numpy image) in
``robust_transfer.corruptions``; docs/corruptions.md lists the measured fidelity and the
differences from the reference.

Random numbers: image i draws from ``torch.Generator().manual_seed(torch_seed(seed, keys[i],
corruption, severity))`` (``_seeding``), on the CPU by default, and the draws are moved to the
images' device. They are not the numpy backend's numbers (another generator), so random
corruptions agree with the reference in distribution, deterministic ones pixel for pixel.
"""
from __future__ import annotations

import numbers
import os
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
from ._registry import get_torch_corruption, register_torch_corruption, registered_torch_corruptions
from ._seeding import canonical_key, check_seed, torch_seed

RNG_DEVICES = ("cpu", "images")

# ----------------------------------------------------------------------------- per-image helpers


def _map_images(fn, count: int, device: torch.device) -> list:
    """[fn(0), ..., fn(count-1)]; on the CPU in a few threads (the per-image work here --
    Poisson draws, JPEG coding, OpenCV -- is serial and releases the GIL). Results do not
    depend on the threading: every image has its own generator."""
    workers = min(count, torch.get_num_threads(), os.cpu_count() or 1)
    if device.type != "cpu" or workers <= 1:
        return [fn(i) for i in range(count)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, range(count)))


def _draw(gens, device: torch.device, sample) -> torch.Tensor:
    """Stack ``sample(generator)`` over the images (one stream each) and move it to ``device``.
    CPU generators draw in a few threads (each generator is serial, the images independent)."""
    drawn = _map_images(lambda i: sample(gens[i]), len(gens), gens[0].device)
    return torch.stack(drawn).to(device)


# Every random number goes through one of the samplers below (tests replay the reference's
# RandomState through them to check each corruption with the reference's own draws).


def _randn(shape):
    """Standard normal numbers of ``shape``."""
    return lambda g: torch.randn(shape, generator=g, device=g.device)


def _rand(shape):
    """Uniform numbers in [0, 1) of ``shape``."""
    return lambda g: torch.rand(shape, generator=g, device=g.device)


def _pixel_randn(shape):
    """Standard normal noise for an image of ``shape`` (3, H, W)."""
    return _randn(shape)


def _pixel_rand(shape):
    """Uniform [0, 1) noise for an image of ``shape`` (3, H, W)."""
    return _rand(shape)


def _randint_array(low: int, high: int, shape):
    """Integers in [low, high) of ``shape`` (int16: three times faster than int64 on a CPU)."""
    return lambda g: torch.randint(low, high, shape, generator=g, device=g.device,
                                   dtype=torch.int16)


def _uniform_scalar(g: torch.Generator, low: float, high: float) -> float:
    """One uniform draw in [low, high) as a Python float (float64 precision)."""
    u = torch.rand((), generator=g, device=g.device, dtype=torch.float64).item()
    return low + (high - low) * u


def _randint(g: torch.Generator, high: int, low: int = 0) -> int:
    return int(torch.randint(low, high, (1,), generator=g, device=g.device).item())


def _unit_to_255(x: torch.Tensor) -> torch.Tensor:
    return x.clamp_(0, 1).mul_(255)


# ----------------------------------------------------------------------------- noise


@register_torch_corruption
def gaussian_noise(x, severity, gens):
    """Additive Gaussian noise on [0, 1] intensities."""
    noise = _draw(gens, x.device, _pixel_randn(x.shape[1:])) * GAUSSIAN_NOISE_STD[severity - 1]
    return _unit_to_255(noise.add_(x / 255))


@register_torch_corruption
def shot_noise(x, severity, gens):
    """Poisson (photon) noise, ``torch.poisson`` per image with its generator."""
    photons = SHOT_NOISE_PHOTONS[severity - 1]
    rates = x / 255 * photons

    def counts(i):
        g = gens[i]
        return torch.poisson(rates[i].to(g.device), generator=g)

    drawn = torch.stack(_map_images(counts, len(gens), gens[0].device)).to(x.device)
    return _unit_to_255(drawn.div_(photons))


@register_torch_corruption
def impulse_noise(x, severity, gens):
    """Salt and pepper: each value hit with probability ``amount``, then 1 or 0 with probability
    1/2 each (scikit-image 0.26's distribution, one uniform draw per value, as the numpy
    backend)."""
    amount = IMPULSE_NOISE_AMOUNT[severity - 1]
    uniform = _draw(gens, x.device, _pixel_rand(x.shape[1:]))
    out = torch.where(uniform < amount / 2, 255.0, x)
    return torch.where((uniform >= amount / 2) & (uniform < amount), 0.0, out)


@register_torch_corruption
def speckle_noise(x, severity, gens):
    """Multiplicative Gaussian noise: x + x * N(0, c)."""
    unit = x / 255
    noise = _draw(gens, x.device, _pixel_randn(x.shape[1:])) * SPECKLE_NOISE_STD[severity - 1]
    return _unit_to_255(noise.mul_(unit).add_(unit))


# ----------------------------------------------------------------------------- blur


@register_torch_corruption
def gaussian_blur(x, severity, gens):
    """Gaussian blur of each channel (scipy's filter, mode 'nearest', 4 sigma)."""
    return _unit_to_255(T.gaussian_filter(x / 255, GAUSSIAN_BLUR_SIGMA[severity - 1]))


@register_torch_corruption
def glass_blur(x, severity, gens):
    """Blur, quantise to 8 bits, shuffle pixels locally (the reference's sequential shuffle,
    resolved exactly in parallel by ``glass_shuffle_sources``), blur again."""
    sigma, max_delta, iterations = GLASS_BLUR_PARAMS[severity - 1]
    count, channels, height, width = x.shape
    blurred = torch.trunc(T.gaussian_filter(x / 255, sigma) * 255).clamp_(0, 255)
    shape = (iterations, max(0, height - 2 * max_delta), max(0, width - 2 * max_delta), 2)
    draws = _draw(gens, x.device, _randint_array(-max_delta, max_delta, shape))
    sources = T.glass_shuffle_sources(height, width, max_delta, draws)
    shuffled = torch.gather(blurred.reshape(count, channels, -1), 2,
                            sources[:, None, :].expand(-1, channels, -1)).reshape(x.shape)
    return _unit_to_255(T.gaussian_filter(shuffled / 255, sigma))


@register_torch_corruption
def defocus_blur(x, severity, gens):
    """Convolution with the reference's anti-aliased disk (OpenCV border REFLECT_101)."""
    radius, alias_blur = DEFOCUS_BLUR_PARAMS[severity - 1]
    return _unit_to_255(T.filter2d_reflect101(x / 255, H.disk_kernel(radius, alias_blur)))


@register_torch_corruption
def motion_blur(x, severity, gens):
    """Linear motion blur, each image at its own random angle in [-45, 45) degrees."""
    radius, sigma = MOTION_BLUR_PARAMS[severity - 1]
    angles = [_uniform_scalar(g, *MOTION_BLUR_ANGLE_RANGE) for g in gens]
    return T.motion_blur(x, radius, sigma, angles).clamp_(0, 255)


@register_torch_corruption
def zoom_blur(x, severity, gens):
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
def snow(x, severity, gens):
    """Snow flakes (thresholded, zoomed noise, motion-blurred) over a brightened image."""
    mean, std, zoom, threshold, radius, sigma, image_weight = SNOW_PARAMS[severity - 1]
    height, width = x.shape[-2:]
    flakes = _draw(gens, x.device, _randn((1, height, width))).mul_(std).add_(mean)
    angles = [_uniform_scalar(g, *SNOW_ANGLE_RANGE) for g in gens]
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
def frost(x, severity, gens):
    """Blend with a random crop of a photograph of frost on glass (the reference's textures,
    enlarged by the same cv2.resize, cached per image size and device)."""
    image_weight, frost_weight = FROST_PARAMS[severity - 1]
    height, width = x.shape[-2:]
    crops = []
    for g in gens:
        index = _randint(g, FROST_TEXTURES_DRAWN)
        texture = _frost_texture(index, height, width, str(x.device))
        top = _randint(g, texture.shape[1] - height)
        left = _randint(g, texture.shape[2] - width)
        crops.append(texture[:, top:top + height, left:left + width])
    out = torch.stack(crops).mul_(frost_weight)
    return out.add_(x, alpha=image_weight).clamp_(0, 255)


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
def fog(x, severity, gens):
    """Add a plasma-fractal haze (batched diamond-square in torch) and rescale so the brightest
    value keeps its level."""
    strength, wibble_decay = FOG_PARAMS[severity - 1]
    height, width = x.shape[-2:]
    map_size = H.next_power_of_two(int(max(height, width, 3)))
    haze = T.plasma_fractal(map_size, wibble_decay,
                            lambda shape: _draw(gens, x.device, _rand(shape)))
    unit = x / 255
    max_val = unit.amax(dim=(1, 2, 3), keepdim=True)
    unit = unit + strength * haze[:, None, :height, :width]
    return _unit_to_255(unit * max_val / (max_val + strength))


def _hsv_value(unit: torch.Tensor):
    """HSV value (max) and max - min over the channels, (N, 1, H, W) each."""
    value = unit.amax(dim=1, keepdim=True)
    return value, value - unit.amin(dim=1, keepdim=True)


@register_torch_corruption
def brightness(x, severity, gens):
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
def spatter(x, severity, gens):
    """Water drops (severities 1-3) or mud (4-5). The liquid layer and mud are torch; the water
    drops' shading (Canny edges, distance transform, histogram equalisation, emboss) is the
    numpy backend's OpenCV code, run per image on the CPU."""
    mean, std, blur, threshold, strength, is_mud = SPATTER_PARAMS[severity - 1]
    height, width = x.shape[-2:]
    liquid = _draw(gens, x.device, _randn((1, height, width))).mul_(std).add_(mean)
    liquid = T.gaussian_filter(liquid, blur)
    liquid = torch.where(liquid < threshold, 0.0, liquid)
    unit = x / 255
    if is_mud:
        mask = T.gaussian_filter((liquid > threshold).float(), strength)
        mask = torch.where(mask < 0.8, 0.0, mask)
        mud = torch.tensor(SPATTER_MUD_COLOUR, device=x.device).view(1, 3, 1, 1)
        return _unit_to_255(unit * (1 - mask) + mud * mask)
    layers = liquid[:, 0].cpu().numpy().astype(np.float64)
    masks = _map_images(lambda i: water_spatter_mask(layers[i], strength), len(gens),
                        torch.device("cpu"))
    mask = torch.from_numpy(np.stack(masks)).to(x.device)[:, None]
    water = torch.tensor(SPATTER_WATER_COLOUR, device=x.device).view(1, 3, 1, 1)
    return _unit_to_255(unit + mask * water)


# ----------------------------------------------------------------------------- digital


@register_torch_corruption
def contrast(x, severity, gens):
    """Pull every channel towards its mean."""
    unit = x / 255
    means = unit.mean(dim=(2, 3), keepdim=True)
    return _unit_to_255((unit - means) * CONTRAST_FACTOR[severity - 1] + means)


@register_torch_corruption
def elastic_transform(x, severity, gens):
    """Smooth random displacement field (uniform noise, Gaussian filter with scipy's 'reflect'
    border and 3 sigma) applied by bilinear resampling with scipy's 'reflect' border."""
    height, width = x.shape[-2:]
    sigma = (height * ELASTIC_SIGMA_FRACTION, width * ELASTIC_SIGMA_FRACTION)
    alpha = ELASTIC_ALPHA[severity - 1]
    max_shift = height * ELASTIC_MAX_SHIFT_FRACTION
    fields = _draw(gens, x.device, _rand((2, height, width)))  # dx, then dy
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
def pixelate(x, severity, gens):
    """Pillow's BOX downsample and NEAREST upsample, re-implemented bit-exactly in torch."""
    scale = PIXELATE_SCALE[severity - 1]
    height, width = x.shape[-2:]
    return T.pil_pixelate(x, (int(width * scale), int(height * scale)))


@register_torch_corruption
@_uint8_in_out
def jpeg_compression(x, severity, gens):
    """Encode and decode as JPEG with Pillow (as the reference), per image on the CPU."""
    quality = JPEG_QUALITY[severity - 1]
    images = x.permute(0, 2, 3, 1).cpu().numpy()

    def code(i):
        buffer = BytesIO()
        Image.fromarray(images[i]).save(buffer, "JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            return np.array(decoded.convert("RGB"))

    decoded = np.stack(_map_images(code, len(images), torch.device("cpu")))
    return torch.from_numpy(decoded).permute(0, 3, 1, 2).to(x.device).contiguous()


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
def saturate(x, severity, gens):
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


def _generators(seed, keys, count: int, name: str, severity: int, device: torch.device):
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
    gens = []
    for key in keys:
        generator = torch.Generator(device=device)
        generator.manual_seed(torch_seed(seed, canonical_key(key), name, severity))
        gens.append(generator)
    return gens


def corrupt_tensor(images: torch.Tensor, name: str, severity: int, *, seed: int = 0, keys=None,
                   value_range=None, rng_device: str = "cpu") -> torch.Tensor:
    """The work behind ``corrupt_batch`` (name and severity already validated)."""
    count, channels, _, _ = _check_batch(images)
    scale = _check_value_range(images, value_range)
    if rng_device not in RNG_DEVICES:
        raise ValueError(f"unknown rng_device {rng_device!r}; allowed: {', '.join(RNG_DEVICES)}")
    gen_device = torch.device("cpu") if rng_device == "cpu" else images.device
    gens = _generators(seed, keys, count, name, severity, gen_device)
    if count == 0:
        return images.clone()

    rgb = images[:, :3] if channels != 1 else images.expand(-1, 3, -1, -1)
    fn = get_torch_corruption(name)
    with torch.no_grad(), T.full_float32_matmul(images.device):
        if getattr(fn, "uint8_in_out", False):
            if images.dtype != torch.uint8:
                rgb = torch.round(rgb.to(torch.float32) * (255.0 / scale)).clamp_(0, 255)
            out = fn(rgb.to(torch.uint8).contiguous(), severity, gens)
            if images.dtype != torch.uint8:
                out = (out.to(torch.float32) * (scale / 255.0)).to(images.dtype)
        else:
            x = rgb.to(torch.float32)
            if scale != 255.0:
                x = x * (255.0 / scale)
            out = fn(x.contiguous(), severity, gens)
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
