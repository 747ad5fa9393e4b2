"""The stable hash behind every random stream: (seed, image key, corruption, severity) -> bytes.

Both backends seed from the same digest: the numpy backend a legacy ``RandomState`` (all eight
32-bit words), the torch backend a ``torch.Generator`` (the first 64 bits). The streams differ
between backends (different generators), but each is fixed by the arguments alone: no process,
worker, rank or machine state enters, and Python's salted ``hash()`` is not used.
"""
from __future__ import annotations

import hashlib
import json
import numbers

# Bumping this changes every derived random stream: only for deliberate, documented breaks.
SEED_SCHEME = "robust_transfer.corruptions/v1"


def canonical_key(key):
    """Validate an image key (None, str or int; numpy integers count as ints)."""
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        return int(key)
    if key is not None and not isinstance(key, str):
        raise ValueError(f"key must be None, a str or an int, got {type(key).__name__} {key!r}")
    return key


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return int(seed)


def stream_digest(seed: int, key, corruption_name: str, severity: int) -> bytes:
    """SHA-256 of the canonical JSON ``[scheme, seed, key, corruption, severity]``."""
    canonical = json.dumps([SEED_SCHEME, check_seed(seed), canonical_key(key), corruption_name,
                            int(severity)])
    return hashlib.sha256(canonical.encode("utf-8")).digest()


def torch_seed(seed: int, key, corruption_name: str, severity: int) -> int:
    """The 64-bit seed of the torch backend's generator for one image (first 8 digest bytes)."""
    return int.from_bytes(stream_digest(seed, key, corruption_name, severity)[:8], "little")
