"""PRIME (Modas, Rade et al., "PRIME: A Few Primitives Can Boost Robustness to Common
Corruptions", ECCV 2022), batched in torch, re-implemented from the paper's description.

Images are ``(N, C, H, W)`` floating tensors **in [0, 1]**; the output has the same shape, dtype
and device and is clamped to [0, 1]. For 0..255 images (uint8 or float) use
:func:`apply_prime_0_255`. Every image of a batch gets its own random draws.

The three primitives (each a plain function in its own module: :mod:`.color`,
:mod:`.filtering`, :mod:`.diffeo`):

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

from typing import Any, Mapping

import torch
from torch import nn

from ._sampling import beta, dirichlet, make_generator, randint
from .color import random_smooth_color
from .diffeo import random_diffeomorphism
from .filtering import random_filter
from .params import IMAGENET_PRESET, resolve_params, validate_params

__all__ = ["PRIME", "apply_prime_0_255"]

_RANGE_TOLERANCE = 1e-3


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
        weights = dirichlet(gen, p["dirichlet_alpha"], n, width).to(x.device, x.dtype)
        clean_weight = beta(gen, p["mix_alpha"], n).to(x.device, x.dtype).view(n, 1, 1, 1)
        lengths = randint(gen, 1, depth, (width, n))
        choices = randint(gen, 0, len(self._ops) - 1, (width, depth, n))
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
