"""The 19 ImageNet-C corruptions in torch: the fast, batched backend (CPU or GPU).

Same algorithms and per-severity parameters (``_params``) as the numpy reference; every function
follows the torch registry contract (``_registry``): float32 (N, 3, H, W) values in [0, 255] on
any device, one Philox stream per image, result clipped to [0, 255]. This module is the work
behind the front doors ``corrupt_batch`` (tensors) and ``corrupt(..., backend="torch")`` (one
numpy image) in ``robust_transfer.corruptions``: validation, per-image stream keys, CPU batch
split. The corruptions live in ``_torch_noise``, ``_torch_blur``, ``_torch_weather``,
``_torch_digital`` and ``_torch_jpeg``; docs/corruptions.md lists the measured fidelity and the
differences from the reference.

Random numbers: image i draws from its Philox 4x32-10 stream keyed by (seed, keys[i],
corruption, severity) (``_philox``), computed on the images' device in integer tensor ops: the
same draws on the CPU and on CUDA (seed scheme ``TORCH_SEED_SCHEME``). They are not the numpy
backend's numbers (another generator), so random corruptions agree with the reference in
distribution, deterministic ones pixel for pixel.
"""
from __future__ import annotations

import numbers

import numpy as np
import torch

from . import MIN_IMAGE_SIDE
from . import _torch_ops as T
from . import _torch_threads as cpu
# The corruption modules register their corruptions on import (``_registry``).
from . import _torch_blur, _torch_digital, _torch_jpeg, _torch_noise, _torch_weather  # noqa: F401
from ._groups import ALL
from ._philox import PhiloxStreams, stream_key
from ._registry import get_torch_corruption, registered_torch_corruptions
from ._seeding import canonical_key, check_seed

if set(registered_torch_corruptions()) != set(ALL):
    raise ImportError(f"torch corruptions {registered_torch_corruptions()} differ from {ALL}")


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
    the load average leaves free (:func:`_torch_threads.usable_cpu_threads`).
    """
    count, channels, _, _ = _check_batch(images)
    scale = _check_value_range(images, value_range)
    stream_keys = _stream_keys(seed, keys, count, name, severity)
    if count == 0:
        return images.clone()
    if images.device.type != "cpu":
        return _corrupt_batch(images, name, severity, scale, stream_keys)
    threads = cpu.usable_cpu_threads(torch.get_num_threads())
    if count == 1 or threads == 1:
        return cpu.with_intra_op_threads(threads, lambda: _corrupt_batch(
            images, name, severity, scale, stream_keys))
    workers = min(count, threads)
    parts = [(int(part[0]), int(part[-1]) + 1)
             for part in np.array_split(np.arange(count), workers)]
    # Each part writes its rows itself (on its thread's single intra-op thread): a torch.cat
    # here would be a parallel region of the caller's OpenMP team, whose idle thread then
    # spins for milliseconds (libgomp's default wait policy) on the core the next call's pool
    # thread needs -- measured: 2 threads took 0.87-0.93 of the 1-thread time with the cat.
    out = torch.empty(images.shape, dtype=images.dtype)

    def corrupt_part(part):
        start, stop = part
        out[start:stop] = _corrupt_batch(images[start:stop], name, severity, scale,
                                         stream_keys[start:stop])

    cpu.share_parts(parts, corrupt_part)
    return out



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
