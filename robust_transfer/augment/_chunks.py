"""Batch chunking shared by PRIME's primitives (a cache-sized chunk at a time on the CPU)."""
from __future__ import annotations

import torch

#: On the CPU, elementwise passes over a whole batch of large images run at memory speed; the
#: primitives therefore process batches in chunks of about this many values (cache-sized).
CPU_CHUNK_VALUES = 2 ** 21


def in_chunks(x: torch.Tensor, fn, *per_image: torch.Tensor) -> torch.Tensor:
    """``fn(x, *per_image)`` on chunks of images (CPU) or on the whole batch (other devices)."""
    n = x.shape[0]
    step = max(1, CPU_CHUNK_VALUES // max(1, x[0].numel())) if x.device.type == "cpu" else n
    if step >= n:
        return fn(x, *per_image)
    return torch.cat([fn(x[i:i + step], *(t[i:i + step] for t in per_image))
                      for i in range(0, n, step)])
