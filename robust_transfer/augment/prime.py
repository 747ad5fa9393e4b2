"""PRIME (Modas, Rade et al., "PRIME: A Few Primitives Can Boost Robustness to Common
Corruptions", ECCV 2022), batched in torch, re-implemented from the paper's description.

Images are ``(N, C, H, W)`` floating tensors **in [0, 1]**; the output has the same shape, dtype
and device and is clamped to [0, 1]. For 0..255 images (uint8 or float) use
:func:`apply_prime_0_255`. Every image of a batch gets its own random draws.

The three primitives (each also a plain function below):

* **smooth random colour** (:func:`random_smooth_color`): each channel goes through a random
  smooth curve ``x + sum_k b_k sin(k pi x)`` over a band of ``color_bandwidth`` consecutive
  frequencies whose top frequency is drawn in ``1..color_cut``; ``b_k ~ N(0, t^2)`` with
  ``t ~ U[color_temperature_min, color_temperature]``. ``sin(k pi x)`` vanishes at 0 and 1, so
  black and white stay put and the curve's perturbation has zero mean.
* **random filter** (:func:`random_filter`): convolution with ``delta + w``, a ``k x k`` identity
  kernel plus a random part ``w_ij ~ N(0, (s/k)^2)``, ``s ~ U[filter_sigma_min, filter_sigma]``,
  made zero-mean so the kernel's taps sum to 1: the filter changes the spectrum but keeps the
  DC component (total intensity; exactly with circular padding, up to the border otherwise).
* **random diffeomorphism** (:func:`random_diffeomorphism`): a smooth displacement field
  ``u(x, y) = sum_{i^2 + j^2 <= c^2} C_ij sin(i pi x) sin(j pi y)``, ``C_ij ~ N(0, T / (i^2 + j^2))``
  per axis (Petrini et al., NeurIPS 2021), cut-off ``c`` drawn in ``diffeo_cut_min..diffeo_cut``,
  temperature ``T`` drawn in Petrini's natural range for the image size and ``c`` unless
  ``diffeo_temperature`` fixes it. The field is zero on the border and rescaled when needed so
  that no pixel moves more than ``diffeo_max_displacement`` (fraction of the image side).

Mixing, per image: ``width`` chains; each chain has a length drawn in ``1..depth`` and applies
that many primitives, each chosen uniformly among the enabled ones (each application with fresh
parameters); the chains are averaged with Dirichlet(``dirichlet_alpha``) weights and the result
is mixed with the clean image with a Beta(``mix_alpha``, ``mix_alpha``) weight. No JSD
consistency loss (the transfer experiments did not use it).

Randomness: every draw comes from a ``torch.Generator`` (the module's own, seeded by ``seed``,
or one passed to the call); draws are made on the CPU and moved to the images' device, so a seed
gives the same parameters on CPU and GPU. Global random state is neither read nor changed.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .params import IMAGENET_PRESET, resolve_params, validate_params

__all__ = ["PRIME", "apply_prime_0_255", "random_smooth_color", "random_filter",
           "random_diffeomorphism", "sample_color_params", "color_curves", "apply_color_curves",
           "sample_filter_kernels", "apply_filters", "sample_displacement", "apply_displacement",
           "diffeo_temperature_range", "make_generator"]

_RANGE_TOLERANCE = 1e-3


# ----------------------------------------------------------------------------- randomness


def make_generator(seed: int | None = None, generator: torch.Generator | None = None) -> torch.Generator:
    """``generator`` itself, or a new CPU generator seeded with ``seed`` (default 0)."""
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        return generator
    return torch.Generator().manual_seed(int(seed or 0) % 2**63)


def _uniform(generator: torch.Generator, n: int, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def _randint(generator: torch.Generator, low: int, high: int, shape) -> torch.Tensor:
    """Integers uniform in ``low..high`` (inclusive)."""
    return torch.randint(int(low), int(high) + 1, tuple(shape), generator=generator)


def _gamma(generator: torch.Generator, alpha: float, shape) -> torch.Tensor:
    """Gamma(alpha, 1) samples from ``generator`` (Marsaglia & Tsang; alpha < 1 by boosting)."""
    shape = tuple(shape)
    boost = alpha < 1.0
    a = alpha + 1.0 if boost else alpha
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    out = torch.empty(shape, dtype=torch.float64).view(-1)
    todo = torch.arange(out.numel())
    while todo.numel():
        z = torch.randn(todo.numel(), generator=generator, dtype=torch.float64)
        u = torch.rand(todo.numel(), generator=generator, dtype=torch.float64)
        v = (1.0 + c * z) ** 3
        ok = (v > 0) & (torch.log(u.clamp_min(1e-300)) < 0.5 * z * z + d - d * v
                        + d * torch.log(v.clamp_min(1e-300)))
        out[todo[ok]] = d * v[ok]
        todo = todo[~ok]
    if boost:
        u = torch.rand(out.numel(), generator=generator, dtype=torch.float64)
        out = out * u.clamp_min(1e-300) ** (1.0 / alpha)
    return out.view(shape)


def _dirichlet(generator: torch.Generator, alpha: float, n: int, k: int) -> torch.Tensor:
    """``n`` draws of a symmetric Dirichlet(alpha) over ``k`` components, float64 (n, k)."""
    if alpha == 1.0:  # normalised exponentials
        g = -torch.log(torch.rand((n, k), generator=generator, dtype=torch.float64).clamp_min(1e-300))
    else:
        g = _gamma(generator, alpha, (n, k))
    return g / g.sum(dim=1, keepdim=True).clamp_min(1e-300)


def _beta(generator: torch.Generator, alpha: float, n: int) -> torch.Tensor:
    """``n`` draws of Beta(alpha, alpha), float64."""
    if alpha == 1.0:
        return torch.rand(n, generator=generator, dtype=torch.float64)
    return _dirichlet(generator, alpha, n, 2)[:, 0]


#: On the CPU, elementwise passes over a whole batch of large images run at memory speed; the
#: primitives therefore process batches in chunks of about this many values (cache-sized).
CPU_CHUNK_VALUES = 2 ** 21


def _in_chunks(x: torch.Tensor, fn, *per_image: torch.Tensor) -> torch.Tensor:
    """``fn(x, *per_image)`` on chunks of images (CPU) or on the whole batch (other devices)."""
    n = x.shape[0]
    step = max(1, CPU_CHUNK_VALUES // max(1, x[0].numel())) if x.device.type == "cpu" else n
    if step >= n:
        return fn(x, *per_image)
    return torch.cat([fn(x[i:i + step], *(t[i:i + step] for t in per_image))
                      for i in range(0, n, step)])


# ----------------------------------------------------------------------------- colour


def sample_color_params(n: int, channels: int, generator: torch.Generator, *, cut: int = 500,
                        temperature: float = 0.05, temperature_min: float = 0.0,
                        bandwidth: int | None = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: the lowest frequency of its band, ``(n,)`` int64, and the Fourier coefficients,
    ``(n, channels, B)`` float64 (zero beyond the image's band), ``B = bandwidth or cut``."""
    band = cut if bandwidth is None else min(int(bandwidth), int(cut))
    top = _randint(generator, 1, cut, (n,))
    low = (top - band + 1).clamp_min(1)
    count = top - low + 1
    strength = _uniform(generator, n, temperature_min, temperature)
    coeffs = torch.randn((n, channels, band), generator=generator, dtype=torch.float64)
    active = torch.arange(band)[None, :] < count[:, None]
    coeffs = coeffs * strength[:, None, None] * active[:, None, :]
    return low, coeffs


#: Sample points of the colour curves' lookup table minus one: a multiple of 255, so that
#: every 8-bit level k/255 is a sample point (exact), and 32 samples per level in between.
COLOR_LUT_INTERVALS = 255 * 32


def _band_sines(values: torch.Tensor, low: torch.Tensor, band: int) -> torch.Tensor:
    """``sin((low[n] + b) pi v)`` for b < ``band``: ``(n, band, *values.shape[1:])`` from
    ``values`` of shape ``(n or 1, ...)``, float64. Two sine evaluations per value, the rest by
    the recurrence ``sin((k+1)t) = 2 cos(t) sin(kt) - sin((k-1)t)`` (stable for real t)."""
    t = math.pi * values.to(torch.float64)
    k0 = low.to(device=values.device, dtype=torch.float64).view(-1, *([1] * (values.ndim - 1)))
    previous, current = torch.sin((k0 - 1) * t), torch.sin(k0 * t)
    two_cos = 2 * torch.cos(t)
    rows = []
    for _ in range(band):
        rows.append(current)
        previous, current = current, two_cos * current - previous
    return torch.stack(rows, dim=1)


def color_curves(points: torch.Tensor, low: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """The curves ``v + sum_b coeffs[n, c, b] sin((low[n] + b) pi v)`` at ``points`` (P,):
    ``(n, C, P)`` float64."""
    points = points.to(torch.float64)
    sines = _band_sines(points.view(1, -1), low, coeffs.shape[2])  # (n, B, P)
    return points + torch.bmm(coeffs.to(torch.float64), sines)


def apply_color_curves(x: torch.Tensor, low: torch.Tensor, coeffs: torch.Tensor, *,
                       lut_intervals: int | None = COLOR_LUT_INTERVALS) -> torch.Tensor:
    """Channel ``c`` of image ``n`` through its curve (no clamping).

    The curve is tabulated at ``lut_intervals + 1`` equally spaced intensities (float64) and
    interpolated linearly: exact at the sample points (all 8-bit levels by default, and 0 and 1),
    within about 1e-3 elsewhere for the default band, and its cost does not grow with the band.
    ``lut_intervals=None`` evaluates the curves at every pixel instead (float64; exact, slower).
    """
    n, c, h, w = x.shape
    if lut_intervals is None:
        values = x.reshape(n, c * h * w)
        sines = _band_sines(values, low, coeffs.shape[2]).view(n, -1, c, h * w)  # (n, B, C, HW)
        weights = coeffs.to(device=x.device, dtype=torch.float64)
        out = values.to(torch.float64).view(n, c, h * w) + torch.einsum("ncb,nbcp->ncp", weights, sines)
        return out.to(x.dtype).view(n, c, h, w)
    points = torch.linspace(0.0, 1.0, lut_intervals + 1, dtype=torch.float64)
    curves = color_curves(points, low, coeffs.to(torch.float64)).reshape(n * c, lut_intervals + 1)
    table = curves.to(device=x.device, dtype=x.dtype)
    slope = (curves[:, 1:] - curves[:, :-1]).to(device=x.device, dtype=x.dtype)
    position = x.reshape(n * c, h * w).clamp(0.0, 1.0).mul_(lut_intervals)
    index = position.long().clamp_(max=lut_intervals - 1)  # truncation = floor (position >= 0)
    frac = position.sub_(index)
    out = torch.gather(table, 1, index).addcmul_(torch.gather(slope, 1, index), frac)
    return out.view(n, c, h, w)


def random_smooth_color(x: torch.Tensor, generator: torch.Generator, *, cut: int = 500,
                        temperature: float = 0.05, temperature_min: float = 0.0,
                        bandwidth: int | None = 20) -> torch.Tensor:
    """The smooth random colour primitive on a batch in [0, 1] (output clamped to [0, 1])."""
    low, coeffs = sample_color_params(x.shape[0], x.shape[1], generator, cut=cut,
                                      temperature=temperature, temperature_min=temperature_min,
                                      bandwidth=bandwidth)
    return _in_chunks(x, apply_color_curves, low, coeffs).clamp_(0.0, 1.0)


# ----------------------------------------------------------------------------- random filter


def sample_filter_kernels(n: int, channels: int, generator: torch.Generator, *,
                          kernel_size: int = 3, sigma: float = 4.0, sigma_min: float = 0.0,
                          per_channel: bool = False) -> torch.Tensor:
    """Per image (and channel when ``per_channel``): ``delta + w`` with ``w`` zero-mean Gaussian
    of standard deviation ``s / k``, ``s ~ U[sigma_min, sigma]``. Shape ``(n, channels or 1, k, k)``,
    float64; every kernel's taps sum to 1."""
    k = int(kernel_size)
    strength = _uniform(generator, n, sigma_min, sigma)
    noise = torch.randn((n, channels if per_channel else 1, k, k), generator=generator,
                        dtype=torch.float64)
    noise = noise * (strength / k).view(n, 1, 1, 1)
    noise = noise - noise.mean(dim=(-2, -1), keepdim=True)
    noise[..., k // 2, k // 2] += 1.0
    return noise


def apply_filters(x: torch.Tensor, kernels: torch.Tensor, padding: str = "reflect") -> torch.Tensor:
    """Convolve image ``i`` (each channel) with ``kernels[i]`` (``(n, 1 or C, k, k)``); output the
    size of the input (no clamping). ``padding``: reflect, replicate, circular or zeros."""
    n, c, h, w = x.shape
    k = kernels.shape[-1]
    weight = kernels.to(device=x.device, dtype=x.dtype).expand(n, c, k, k).reshape(n * c, 1, k, k)
    r = k // 2
    flat = x.reshape(1, n * c, h, w)
    if r:
        mode = padding
        if mode == "reflect" and r >= min(h, w):
            mode = "replicate"  # reflect needs the pad to be smaller than the image
        flat = F.pad(flat, (r, r, r, r), mode="constant" if mode == "zeros" else mode)
    return F.conv2d(flat, weight, groups=n * c).view(n, c, h, w)


def random_filter(x: torch.Tensor, generator: torch.Generator, *, kernel_size: int = 3,
                  sigma: float = 4.0, sigma_min: float = 0.0, padding: str = "reflect",
                  per_channel: bool = False) -> torch.Tensor:
    """The random filter primitive on a batch in [0, 1] (output clamped to [0, 1])."""
    kernels = sample_filter_kernels(x.shape[0], x.shape[1], generator, kernel_size=kernel_size,
                                    sigma=sigma, sigma_min=sigma_min, per_channel=per_channel)
    return _in_chunks(x, lambda xs, ks: apply_filters(xs, ks, padding), kernels).clamp_(0.0, 1.0)


# ----------------------------------------------------------------------------- diffeomorphism


def diffeo_temperature_range(size: float, cut: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Petrini et al.'s natural temperatures for an image of side ``size`` and cut-off ``cut``:
    ``T_min = 1 / (pi size^2 log c)`` (displacements of about a pixel), ``T_max = 4 / (pi^3 c^2
    log c)`` (the largest without folding). ``T_min`` is capped at ``T_max``."""
    cut = cut.to(torch.float64)
    log = torch.log(cut)
    t_max = 4.0 / (math.pi ** 3 * cut ** 2 * log)
    t_min = torch.minimum(1.0 / (math.pi * float(size) ** 2 * log), t_max)
    return t_min, t_max


def sample_displacement(n: int, height: int, width: int, generator: torch.Generator, *,
                        cut: int = 500, cut_min: int = 2, temperature: float | None = None,
                        max_displacement: float = 0.125, device: torch.device | str = "cpu",
                        dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Displacement fields ``(n, 2, height, width)``: channel 0 along x as a fraction of the
    width, channel 1 along y as a fraction of the height. Zero on the border; its largest
    absolute value never exceeds ``max_displacement``. The coefficients are drawn on the CPU;
    the field is summed on ``device`` in ``dtype``."""
    cuts = _randint(generator, cut_min, cut, (n,))
    if temperature is None:
        t_min, t_max = diffeo_temperature_range(math.sqrt(height * width), cuts)
        temps = t_min + (t_max - t_min) * torch.rand(n, generator=generator, dtype=torch.float64)
    else:
        temps = torch.full((n,), float(temperature), dtype=torch.float64)
    k = int(cuts.max())
    i = torch.arange(1, k + 1, dtype=torch.float64)
    radius2 = i[:, None] ** 2 + i[None, :] ** 2
    inside = radius2[None] <= (cuts.to(torch.float64) ** 2).view(n, 1, 1)
    scale = torch.sqrt(temps).view(n, 1, 1) / torch.sqrt(radius2)[None] * inside
    coeffs = torch.randn((n, 2, k, k), generator=generator, dtype=torch.float64) * scale[:, None]
    coeffs = coeffs.to(device=device, dtype=dtype)
    freqs = math.pi * torch.arange(1, k + 1, device=device, dtype=dtype)
    sin_y = torch.sin(freqs[:, None] * torch.linspace(0.0, 1.0, height, device=device, dtype=dtype))
    sin_x = torch.sin(freqs[:, None] * torch.linspace(0.0, 1.0, width, device=device, dtype=dtype))
    # field[n, a, y, x] = sum_ij coeffs[n, a, i, j] sin(i pi y) sin(j pi x): two matrix products
    field = sin_y.t() @ (coeffs @ sin_x)
    peak = field.abs().amax(dim=(1, 2, 3)).clamp_min(1e-30)
    field = field * torch.clamp(max_displacement / peak, max=1.0).view(n, 1, 1, 1)
    return field.clamp_(-max_displacement, max_displacement)  # rounding cannot overshoot


def apply_displacement(x: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
    """``out(p) = x(p + field(p))`` with bilinear interpolation (border values outside)."""
    n, _, h, w = x.shape
    field = field.to(device=x.device, dtype=x.dtype)
    ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    # a fraction f of the side is 2f in grid_sample's [-1, 1] coordinates (align_corners=True)
    grid = torch.stack((grid_x + 2 * field[:, 0], grid_y + 2 * field[:, 1]), dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def random_diffeomorphism(x: torch.Tensor, generator: torch.Generator, *, cut: int = 500,
                          cut_min: int = 2, temperature: float | None = None,
                          max_displacement: float = 0.125) -> torch.Tensor:
    """The random diffeomorphism primitive on a batch in [0, 1] (output clamped to [0, 1])."""
    field = sample_displacement(x.shape[0], x.shape[2], x.shape[3], generator, cut=cut,
                                cut_min=cut_min, temperature=temperature,
                                max_displacement=max_displacement, device=x.device, dtype=x.dtype)
    return apply_displacement(x, field).clamp_(0.0, 1.0)


# ----------------------------------------------------------------------------- the mixture


def _check_images(images: Any) -> None:
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"PRIME expects a torch.Tensor of images, got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"PRIME expects images of shape (N, C, H, W), got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"PRIME expects floating-point images in [0, 1], got dtype {images.dtype}; "
                         "for uint8 / 0..255 images use apply_prime_0_255")


class PRIME(nn.Module):
    """Batched PRIME augmentation of images in [0, 1]; see the module docstring.

    Every argument of :data:`robust_transfer.augment.params.PARAMETERS` is a keyword argument
    (defaults: the transfer experiments' settings, ``TRANSFER_DEFAULTS``), plus:

    Args:
        enabled: False makes the module the identity.
        seed: seeds the module's own generator (default 0); ignored when ``generator`` is given.
        generator: a ``torch.Generator`` (CPU) to draw from instead.

    ``forward(images, generator=None)`` takes ``(N, C, H, W)`` floating images in [0, 1]
    (ValueError otherwise) and returns augmented images of the same shape, dtype and device,
    in [0, 1]. ``width == 0`` or ``enabled=False`` returns the input tensor itself.
    """

    def __init__(self, *, enabled: bool = True, seed: int | None = None,
                 generator: torch.Generator | None = None, **params: Any):
        super().__init__()
        self.params = validate_params(params)
        self.enabled = bool(enabled)
        self.seed = seed
        self.generator = make_generator(seed, generator)
        self._ops: list[str] = [name for name in ("color", "filter", "diffeo") if self.params[name]]

    def _apply_primitive(self, name: str, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        p = self.params
        if name == "color":
            return random_smooth_color(x, gen, cut=p["color_cut"], temperature=p["color_temperature"],
                                       temperature_min=p["color_temperature_min"],
                                       bandwidth=p["color_bandwidth"])
        if name == "filter":
            return random_filter(x, gen, kernel_size=p["filter_kernel_size"], sigma=p["filter_sigma"],
                                 sigma_min=p["filter_sigma_min"], padding=p["filter_padding"],
                                 per_channel=p["filter_per_channel"])
        return random_diffeomorphism(x, gen, cut=p["diffeo_cut"], cut_min=p["diffeo_cut_min"],
                                     temperature=p["diffeo_temperature"],
                                     max_displacement=p["diffeo_max_displacement"])

    # -- construction helpers
    @classmethod
    def imagenet_preset(cls, **overrides: Any) -> "PRIME":
        """PRIME with the PRIME paper's ImageNet settings (:data:`IMAGENET_PRESET`: all three
        primitives, chains of stochastic depth 1..3), updated by ``overrides``."""
        extra = {k: overrides.pop(k) for k in ("enabled", "seed", "generator") if k in overrides}
        return cls(**{**IMAGENET_PRESET, **overrides}, **extra)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None = None, **extra: Any) -> "PRIME":
        """From a dict of parameters, optionally with ``preset`` ('transfer' or 'imagenet'),
        ``enabled`` and ``seed``."""
        config = dict(config or {})
        for key in ("enabled", "seed", "generator"):
            if key in config:
                extra.setdefault(key, config.pop(key))
        return cls(**resolve_params(config), **extra)

    @property
    def is_identity(self) -> bool:
        return not self.enabled or self.params["width"] == 0 or not self._ops

    @property
    def primitives(self) -> list[str]:
        return list(self._ops)

    def config(self) -> dict:
        """The complete settings (plain values), e.g. for logs and results."""
        return {"enabled": self.enabled, **self.params}

    def manual_seed(self, seed: int) -> "PRIME":
        """Re-seed the module's own generator."""
        self.generator.manual_seed(int(seed) % 2**63)
        return self

    def extra_repr(self) -> str:
        if self.is_identity:
            return "identity"
        p = self.params
        return f"primitives={self.primitives}, width={p['width']}, depth={p['depth']}"

    # -- the augmentation
    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_images(images)
        if self.is_identity or images.shape[0] == 0:
            return images
        low, high = (float(v) for v in torch.aminmax(images))
        if low < -_RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
            raise ValueError(f"PRIME expects images in [0, 1], got values in [{low:.4g}, {high:.4g}]"
                             "; for 0..255 images use apply_prime_0_255")
        gen = self.generator if generator is None else make_generator(generator=generator)
        compute = images.dtype if images.dtype in (torch.float32, torch.float64) else torch.float32
        # no autograd; no autocast (mmengine runs the data preprocessor inside the AMP context)
        with torch.no_grad(), torch.autocast(device_type=images.device.type, enabled=False):
            out = self._mix(images.to(compute), gen)
        return out.to(images.dtype)

    def _mix(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        p = self.params
        n, width, depth = x.shape[0], p["width"], p["depth"]
        weights = _dirichlet(gen, p["dirichlet_alpha"], n, width).to(x.device, x.dtype)
        clean_weight = _beta(gen, p["mix_alpha"], n).to(x.device, x.dtype).view(n, 1, 1, 1)
        lengths = _randint(gen, 1, depth, (width, n))
        choices = _randint(gen, 0, len(self._ops) - 1, (width, depth, n))
        mixed = None
        for chain in range(width):
            y = x  # never written in place: ops return new tensors, subsets go to a copy
            for step in range(depth):
                alive = lengths[chain] > step
                for index, name in enumerate(self._ops):
                    selected = torch.nonzero(alive & (choices[chain, step] == index)).flatten()
                    if selected.numel() == n:
                        y = self._apply_primitive(name, y, gen)
                    elif selected.numel():
                        picked = selected.to(x.device)
                        if y is x:
                            y = x.clone()
                        y.index_copy_(0, picked, self._apply_primitive(name, y.index_select(0, picked), gen))
            weight = weights[:, chain].view(n, 1, 1, 1)
            mixed = y * weight if mixed is None else mixed.addcmul_(y, weight)
        # clean_weight * x + (1 - clean_weight) * mixed
        return mixed.lerp_(x, clean_weight).clamp_(0.0, 1.0)


def apply_prime_0_255(prime: PRIME, images: torch.Tensor, generator: torch.Generator | None = None,
                      *, scale: float = 255.0) -> torch.Tensor:
    """PRIME on images in 0..``scale`` (uint8 or floating): divided by ``scale``, augmented,
    multiplied back. uint8 input gives rounded uint8 output; floating input keeps its dtype
    (not rounded)."""
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"expected a torch.Tensor, got {type(images).__name__}")
    if prime.is_identity:
        return images
    if images.dtype == torch.uint8:
        out = prime(images.float() / scale, generator) * scale
        return out.round_().clamp_(0, 255).to(torch.uint8)
    if not images.is_floating_point():
        raise ValueError(f"expected uint8 or floating images in 0..{scale:g}, got dtype {images.dtype}")
    compute = images.dtype if images.dtype in (torch.float32, torch.float64) else torch.float32
    return (prime(images.to(compute) / scale, generator) * scale).to(images.dtype)

