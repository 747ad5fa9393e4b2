"""The stable hash behind every random stream: (seed, image key, corruption, severity) -> bytes.

Both backends seed from the same digest: the numpy backend a legacy ``RandomState`` (all eight
32-bit words), the torch backend a Philox 4x32-10 key (the first 64 bits, ``_philox``). The
streams differ between backends (different generators), but each is fixed by the arguments
alone: no process, worker, rank or machine state enters, and Python's salted ``hash()`` is not
used.

Seed schemes name how a backend turns these digests into numbers; results record the scheme
of their backend (``seed_scheme``), and results of different schemes refuse to merge or resume.
"""
from __future__ import annotations

import hashlib
import json
import numbers

# Bumping this changes every derived random stream: only for deliberate, documented breaks.
# It is hashed into every digest, so it is also the numpy backend's seed scheme.
SEED_SCHEME = "robust_transfer.corruptions/v1"
NUMPY_SEED_SCHEME = SEED_SCHEME
# The torch backend's scheme: Philox 4x32-10 in integer tensor ops on the images' device, the
# same draws on every device (docs/corruptions.md, "Seed schemes").
TORCH_SEED_SCHEME = "philox4x32-10/v2"
# Before v2 the torch backend seeded a torch.Generator (CPU or the images' device) from the
# digest; results written then carry no seed_scheme field and are read as this scheme.
LEGACY_TORCH_SEED_SCHEME = "torch-generator/v1"


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


def seed_scheme(backend: str) -> str | None:
    """The seed scheme of a corruption backend as results name it: ``"numpy"`` ->
    NUMPY_SEED_SCHEME, ``"torch"`` and its variants (``"torch-batch"``) -> TORCH_SEED_SCHEME,
    anything else (e.g. pre-computed corrupted files) -> None."""
    if backend == "numpy":
        return NUMPY_SEED_SCHEME
    if isinstance(backend, str) and backend.startswith("torch"):
        return TORCH_SEED_SCHEME
    return None
