"""The torch backend's jpeg_compression: Pillow's codec in CPU threads, or nvjpeg where probed.

Pillow's bytes are the reference; on a CUDA device whose torchvision codes JPEG on the GPU
within a stated bound of Pillow (:func:`gpu_jpeg_usable`, probed once per device) nvjpeg is used
instead.
"""
from __future__ import annotations

import os
from io import BytesIO

import numpy as np
import torch
from PIL import Image

from . import _torch_ops as T
from . import _torch_threads as cpu
from ._params import JPEG_QUALITY
from ._registry import register_torch_corruption


@register_torch_corruption
@T.uint8_in_out
def jpeg_compression(x, severity, rng):
    """Encode and decode as JPEG with Pillow (as the reference): one image per task in a pool of
    CPU threads (libjpeg releases the GIL), the same bytes as Pillow. On a CUDA device whose
    torchvision encodes and decodes JPEG on the GPU within the stated bound of Pillow
    (:func:`gpu_jpeg_usable`), nvjpeg instead."""
    quality = JPEG_QUALITY[severity - 1]
    if x.device.type == "cuda" and gpu_jpeg_usable(x.device):
        return _gpu_jpeg(x, quality)
    return cpu.pillow_per_image(x, lambda image: pil_jpeg(image, quality))


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
