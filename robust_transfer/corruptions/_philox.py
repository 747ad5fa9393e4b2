"""Philox 4x32-10 in integer tensor ops: the torch backend's random numbers, the same on any device.

Philox (Salmon et al., SC 2011, "Parallel random numbers: as easy as 1, 2, 3") is a counter-based
generator: block ``philox(counter, key)`` of four 32-bit words is a fixed function of a 128-bit
counter and a 64-bit key, so any draw can be computed anywhere, in any order, on any device.
Here every 32-bit word lives in an int64 tensor (values 0 .. 2**32 - 1): no unsigned dtype, no
float. A 32x32 -> 64-bit product is one int64 product that wraps modulo 2**64 where a check on
first use shows the device's int64 products wrap (every CPU and GPU torch runs on), otherwise
split into partial products below 2**49 -- the same bits either way. The integers are therefore
bit-identical on the CPU and on CUDA (tested against the published known-answer vectors, the two
product forms against each other, and, where a GPU exists, between devices).

Stream layout (:class:`PhiloxStreams`): image i of a batch has key ``(k0, k1)`` = the first eight
bytes of its SHA-256 stream digest (``_seeding.stream_digest``); draw call number j of a
corruption (0, 1, 2, ... in the order the corruption asks) uses counters ``(b_lo, b_hi, j, 0)``
for blocks ``b = 0, 1, ...``; a draw of M values takes the first M words of blocks 0 .. ceil(M/4)-1
in order. So a draw never depends on the batch size, the device, or another image's draws.

Floats are derived from the words: uniform float32 in [0, 1) from the top 24 bits, uniform
float64 from two words (53 bits), normals by Box-Muller (float32; CPU and CUDA agree to a few
ulp of ``log``/``sin``/``cos``), Poisson by exact inversion (:func:`poisson_inverse_table`).

On the CPU the words and the Poisson table search come from the compiled ``_philox_native``
(``_philox_native.c``, built by ``pip install -e .``) when it is importable: the same integers
(tested word for word) about ten times faster. Floats are always derived in tensor ops.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ._seeding import stream_digest

try:  # the compiled CPU form of the integer work (setup.py; optional, the same bits)
    from . import _philox_native as native
except ImportError:  # no C compiler at install time: the tensor-op form below
    native = None

# Philox 4x32 constants (Random123): round multipliers and the Weyl key increments.
PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
PHILOX_ROUNDS = 10
_MASK32 = 0xFFFFFFFF
_LOW16 = 0xFFFF
CPU_CHUNK_BLOCKS = 65536  # blocks per chunk on the CPU (int64 temporaries of 512 KiB)


def _mulhilo(a: torch.Tensor, multiplier: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(high, low) 32-bit halves of ``a * multiplier`` for 32-bit ``a`` (int64 tensor) and a
    32-bit constant: the constant is split into 16-bit halves, so every partial product is
    below 2**48 and int64 never overflows (the portable form; see :func:`_mulhilo_wrapping`)."""
    if isinstance(a, int):  # a constant word (the first round's counter): Python's big ints
        product = a * multiplier
        return product >> 32, product & _MASK32
    low_product = a * (multiplier & _LOW16)              # < 2**48
    high_product = a * (multiplier >> 16)                # < 2**48
    combined = low_product.add_((high_product & _LOW16) << 16)  # < 2**49
    high = (high_product >> 16).add_(combined >> 32)
    return high, combined.bitwise_and_(_MASK32)


def _mulhilo_wrapping(a: torch.Tensor, multiplier: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_mulhilo` with one int64 product that wraps modulo 2**64 (the true product is
    below 2**64, so its bits are exact): half the tensor ops. Used only on devices where
    :func:`wrapping_products` has checked that int64 products wrap."""
    if isinstance(a, int):
        product = a * multiplier
        return product >> 32, product & _MASK32
    product = a * multiplier
    return (product >> 32).bitwise_and_(_MASK32), product.bitwise_and_(_MASK32)


_WRAPPING: dict = {}


def wrapping_products(device) -> bool:
    """Whether int64 tensor products on ``device`` wrap modulo 2**64 (two's complement), checked
    once per device against exact products of 4096 random 32-bit words with both Philox
    multipliers. Every CPU and GPU torch runs on does; if one did not, the portable
    :func:`_mulhilo` is used -- the same bits, twice the ops."""
    key = str(device)
    if key not in _WRAPPING:
        words = np.random.RandomState(0).randint(0, 1 << 32, 4096, dtype=np.uint64)
        words[:2] = (0, _MASK32)
        tensor = torch.from_numpy(words.astype(np.int64)).to(device)
        ok = True
        for multiplier in (PHILOX_M0, PHILOX_M1):
            exact = words * np.uint64(multiplier)  # < 2**64: exact in uint64
            high, low = _mulhilo_wrapping(tensor, multiplier)
            ok = ok and np.array_equal(high.cpu().numpy(), (exact >> np.uint64(32)).astype(np.int64))
            ok = ok and np.array_equal(low.cpu().numpy(),
                                       (exact & np.uint64(_MASK32)).astype(np.int64))
        _WRAPPING[key] = bool(ok)
    return _WRAPPING[key]


def philox4x32(counter: tuple, key: tuple, rounds: int = PHILOX_ROUNDS) -> list[torch.Tensor]:
    """The Philox 4x32 block function on broadcastable int64 tensors (or ints) of 32-bit words.

    ``counter`` is four words (c0, c1, c2, c3), ``key`` two (k0, k1); returns the four output
    words, broadcast to a common shape. Pure integer arithmetic: device-independent bits.
    """
    c0, c1, c2, c3 = counter
    k0, k1 = key
    tensors = [w for w in (c0, c1, c2, c3, k0, k1) if isinstance(w, torch.Tensor)]
    mulhilo = _mulhilo
    if tensors and wrapping_products(tensors[0].device):
        mulhilo = _mulhilo_wrapping
    for round_index in range(rounds):
        if round_index:
            k0 = (k0 + PHILOX_W0) & _MASK32
            k1 = (k1 + PHILOX_W1) & _MASK32
        hi0, lo0 = mulhilo(c0, PHILOX_M0)
        hi1, lo1 = mulhilo(c2, PHILOX_M1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return [c0, c1, c2, c3]


def philox4x32_blocks(index: torch.Tensor, subsequence: int, k0: torch.Tensor,
                      k1: torch.Tensor, out: torch.Tensor) -> None:
    """Write the Philox 4x32-10 blocks of counters ``(index, 0, subsequence, 0)`` and keys
    ``(k0, k1)`` into ``out`` (shape broadcast(index, k0) + (4,), int64): the same words as
    :func:`philox4x32`, in about half the tensor ops, for devices whose int64 products wrap.

    Why it is faster: a word is kept in an int64 whose upper 32 bits may be garbage, and only
    the two words about to be multiplied are masked (in place). ``p >> 32`` of the wrapped
    product has the high word in its low 32 bits whatever the sign, and XOR never carries
    between bit positions, so the low 32 bits of every word are exact; the outputs are masked
    once at the end. 10 ops per round instead of 12 plus temporaries.
    """
    shape = torch.broadcast_shapes(index.shape, k0.shape)
    c0 = index.expand(shape).clone()
    c2 = torch.full(shape, int(subsequence), dtype=torch.int64, device=index.device)
    c1 = c3 = 0  # constant words of the counter: no tensor needed in the first round
    for round_index in range(PHILOX_ROUNDS):
        if round_index:
            k0 = (k0 + PHILOX_W0) & _MASK32
            k1 = (k1 + PHILOX_W1) & _MASK32
        product0 = c0.bitwise_and_(_MASK32).mul_(PHILOX_M0)  # wraps modulo 2**64: exact bits
        product1 = c2.bitwise_and_(_MASK32).mul_(PHILOX_M1)
        next0 = (product1 >> 32).bitwise_xor_(k0)
        next2 = (product0 >> 32).bitwise_xor_(k1)
        if round_index:
            next0.bitwise_xor_(c1)
            next2.bitwise_xor_(c3)
        c0, c1, c2, c3 = next0, product1, next2, product0
    for column, word in enumerate((c0, c1, c2, c3)):
        torch.bitwise_and(word, _MASK32, out=out[..., column])


def stream_key(seed: int, key, corruption_name: str, severity: int) -> tuple[int, int]:
    """The Philox key of one image's stream: the first two little-endian 32-bit words of the
    SHA-256 stream digest shared with the numpy backend (which is unchanged)."""
    digest = stream_digest(seed, key, corruption_name, severity)
    return int.from_bytes(digest[0:4], "little"), int.from_bytes(digest[4:8], "little")


class PhiloxStreams:
    """One Philox stream per image of a batch; every draw is batched over the images.

    Args:
        keys: ``[(k0, k1), ...]`` per image (see :func:`stream_key`).
        device: where the words are computed and the draws returned.

    Each ``words``/``uniform``/``normal``/... call is one draw call: it takes the next
    subsequence number, so the order of calls (fixed by the corruption's code) fixes the draws.
    """

    def __init__(self, keys, device):
        self.device = torch.device(device)
        keys = np.asarray(list(keys), dtype=np.int64).reshape(-1, 2)
        self.count = keys.shape[0]
        self._k0 = torch.from_numpy(keys[:, 0].copy()).to(self.device)[:, None]
        self._k1 = torch.from_numpy(keys[:, 1].copy()).to(self.device)[:, None]
        self._calls = 0
        self._wrapping = wrapping_products(self.device)

    def _next_call(self) -> int:
        self._calls += 1
        return self._calls - 1

    def words(self, shape) -> torch.Tensor:
        """(N, *shape) int64 tensor of independent uniform 32-bit words (0 .. 2**32 - 1)."""
        shape = tuple(int(s) for s in shape)
        size = math.prod(shape)
        blocks = -(-size // 4)
        subsequence = self._next_call()
        if self.count == 0 or size == 0:
            return torch.zeros((self.count,) + shape, dtype=torch.int64, device=self.device)
        if blocks > _MASK32 or subsequence > _MASK32:
            raise ValueError(f"a draw of {size} values is too large for one Philox stream")
        out = torch.empty((self.count, blocks, 4), dtype=torch.int64, device=self.device)
        if self.device.type == "cpu" and native is not None:
            native.philox_words(out.numpy(), self._k0.numpy(), self._k1.numpy(), subsequence)
            return out.reshape(self.count, 4 * blocks)[:, :size].reshape((self.count,) + shape)
        # On the CPU, chunks whose temporaries stay in the L2 cache are ~3x faster (measured on
        # the 2-core development machine); on a GPU one launch per op over everything is best.
        step = blocks if self.device.type != "cpu" else max(1, CPU_CHUNK_BLOCKS // self.count)
        for start in range(0, blocks, step):
            stop = min(blocks, start + step)
            index = torch.arange(start, stop, dtype=torch.int64, device=self.device)[None, :]
            if self._wrapping:
                philox4x32_blocks(index, subsequence, self._k0, self._k1, out[:, start:stop])
                continue
            # Constant counter words stay Python ints: the first round works on (1, blocks).
            block = philox4x32((index, 0, subsequence, 0), (self._k0, self._k1))
            out[:, start:stop] = torch.stack(torch.broadcast_tensors(*block), dim=-1)
        return out.reshape(self.count, 4 * blocks)[:, :size].reshape((self.count,) + shape)

    def uniform(self, shape, dtype=torch.float32) -> torch.Tensor:
        """Uniform numbers in [0, 1): float32 from the top 24 bits of one word each, float64
        from 53 bits of two words each (both exact multiples of a power of two)."""
        if dtype == torch.float64:
            pair = self.words(tuple(shape) + (2,))
            bits = (pair[..., 0] >> 5) * (1 << 26) + (pair[..., 1] >> 6)
            return bits.to(torch.float64) * (2.0 ** -53)
        if dtype != torch.float32:
            raise ValueError(f"uniform draws are float32 or float64, got {dtype}")
        return (self.words(shape) >> 8).to(torch.float32).mul_(2.0 ** -24)

    def normal(self, shape) -> torch.Tensor:
        """Standard normal float32 numbers by Box-Muller: each pair of words gives a radius
        sqrt(-2 ln u1) (u1 in (0, 1]) and an angle 2 pi u2, and two normals (cos and sin)."""
        shape = tuple(int(s) for s in shape)
        size = math.prod(shape)
        pairs = -(-size // 2)
        words = self.words((pairs, 2))
        u1 = ((words[..., 0] >> 8) + 1).to(torch.float32).mul_(2.0 ** -24)
        angle = (words[..., 1] >> 8).to(torch.float32).mul_(2.0 ** -24 * 2 * math.pi)
        radius = u1.log_().mul_(-2.0).sqrt_()
        # Written straight into the interleaved output: no stacked temporaries.
        normals = torch.empty((self.count, pairs, 2), dtype=torch.float32, device=self.device)
        torch.mul(radius, torch.cos(angle), out=normals[..., 0])
        torch.mul(radius, angle.sin_(), out=normals[..., 1])
        return normals.reshape(self.count, 2 * pairs)[:, :size].reshape((self.count,) + shape)

    def integers(self, low: int, high, shape=()) -> torch.Tensor:
        """Integers in [low, high) (int64, (N, *shape)) by multiply-shift of one word each:
        floor(word * n / 2**32), biased by less than n / 2**32 (< 2e-9 for n <= 8).
        ``high`` may be a per-image sequence (then ``shape`` must be ``()``)."""
        words = self.words(shape)
        span = torch.as_tensor(high, dtype=torch.int64, device=self.device) - int(low)
        if span.ndim:
            span = span.reshape((self.count,) + (1,) * len(tuple(shape)))
        if bool((span <= 0).any()) or bool((span > (1 << 31)).any()):
            raise ValueError(f"integer draws need 0 < high - low <= 2**31, got low {low}, "
                             f"high {high}")
        # In place on the fresh words: three temporaries the size of the draw cost page faults.
        return words.mul_(span).bitwise_right_shift_(32).add_(int(low))

    def poisson_uint8_levels(self, levels: torch.Tensor, photons: float) -> torch.Tensor:
        """Poisson counts with rates ``levels / 255 * photons``, exactly in distribution.

        ``levels`` is an (N, ...) float tensor of values in [0, 255]. The rate is split into the
        rate of the whole grey level below (within 1e-3: float images scaled back to 0..255 land
        on their uint8 level) and the rest (below ``photons / 255``); Poisson variables add, so
        the count is the sum of one draw for each. The level's draw inverts the CDF table of
        :func:`poisson_inverse_table` with one 32-bit word (integer comparisons: the same counts
        on every device); the rest's (second draw call, computed only when some value lies
        between grey levels) by sequential search (rates below 0.24: a few steps).
        """
        whole = torch.floor(levels + 1e-3).clamp_(0, 255)
        words = self.words(levels.shape[1:])
        rest_call = self._next_call()
        counts = _invert_poisson_table(words, whole.to(torch.int64), float(photons))
        rest = (levels - whole).clamp_(min=0)
        if bool((rest > 0).any()):
            self._calls, later = rest_call, self._calls
            uniform = self.uniform(levels.shape[1:], dtype=torch.float64)
            self._calls = later
            counts += _small_rate_poisson(rest.to(torch.float64) * (photons / 255.0), uniform)
        return counts


_TABLE_LENGTH = 512  # counts 0..511: P(Poisson(60) > 511) is far below 2**-32


@functools.lru_cache(maxsize=16)
def poisson_inverse_table(photons: float) -> np.ndarray:
    """(256, 512) int64 thresholds: row l holds ceil(F_l(k) * 2**32) for the Poisson CDF F_l of
    rate l / 255 * photons (float64, summed from the pmf in log space), plus ``l * 2**33``, so
    the rows concatenated are one sorted array (a word w of row l is found by searching
    w + l * 2**33). The count drawn with word w is #{k : threshold_l(k) <= w}, so
    P(count <= k) = threshold_l(k) / 2**32 = F_l(k) to within 2**-32."""
    from scipy.special import gammaln

    rates = np.arange(256, dtype=np.float64) / 255.0 * photons
    counts = np.arange(_TABLE_LENGTH, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_pmf = counts[None, :] * np.log(rates[:, None]) - rates[:, None] - gammaln(counts + 1)
    log_pmf[0] = -np.inf
    log_pmf[0, 0] = 0.0  # rate 0: always 0 photons
    cdf = np.minimum(np.cumsum(np.exp(log_pmf), axis=1), 1.0)
    cdf[:, -1] = 1.0
    thresholds = np.ceil(cdf * 2.0 ** 32).astype(np.int64)
    thresholds += (np.arange(256, dtype=np.int64) << 33)[:, None]
    return thresholds


GUIDE_BITS = 10  # the guide table splits the words into 4096 buckets per grey level


@functools.lru_cache(maxsize=32)
def _poisson_tables(photons: float, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The flattened threshold table (without the row offsets) and its guide table: for grey
    level l and bucket j (words with the same top GUIDE_BITS bits), the count drawn by the
    bucket's smallest word -- where the search for any word of the bucket starts."""
    thresholds = poisson_inverse_table(photons) - (np.arange(256, dtype=np.int64) << 33)[:, None]
    bucket_starts = np.arange(1 << GUIDE_BITS, dtype=np.int64) << (32 - GUIDE_BITS)
    guide = np.stack([np.searchsorted(row, bucket_starts, side="right") for row in thresholds])
    guide += (np.arange(256, dtype=np.int64) * _TABLE_LENGTH)[:, None]  # flat table positions
    return (torch.from_numpy(thresholds.reshape(-1)).to(device),
            torch.from_numpy(guide.reshape(-1)).to(device))


def _invert_poisson_table(words: torch.Tensor, whole_levels: torch.Tensor,
                          photons: float) -> torch.Tensor:
    """#{k : threshold_l(k) <= w} per word w of grey level l (see :func:`poisson_inverse_table`):
    start at the guide table's count for w's bucket and step up while the next threshold is
    still <= w. Most words need at most one step; the few that need more (tails, where many
    counts share a bucket) are gathered and continued on their own."""
    thresholds, guide = _poisson_tables(photons, str(words.device))
    flat_words = words.reshape(-1)
    levels = whole_levels.reshape(-1)
    if words.device.type == "cpu" and native is not None:
        counts = torch.empty_like(flat_words)
        native.poisson_invert(counts.numpy(), flat_words.contiguous().numpy(),
                              levels.contiguous().numpy(), thresholds.numpy(), guide.numpy(),
                              GUIDE_BITS, _TABLE_LENGTH)
        return counts.reshape(words.shape)
    position = guide.index_select(0, (levels << GUIDE_BITS) + (flat_words >> (32 - GUIDE_BITS)))
    step = thresholds.index_select(0, position) <= flat_words
    position = position + step  # the first step, for every word at once
    pending = step.nonzero().squeeze(1)  # the words that may need more steps
    while pending.numel():
        pending_position = position.index_select(0, pending)
        step = thresholds.index_select(0, pending_position) <= flat_words.index_select(0, pending)
        position.index_copy_(0, pending, pending_position + step)
        pending = pending[step]
    counts = position - levels * _TABLE_LENGTH
    return counts.reshape(words.shape)


def _small_rate_poisson(rates: torch.Tensor, uniform: torch.Tensor,
                        max_count: int = 40) -> torch.Tensor:
    """Poisson counts for small float64 ``rates`` by sequential inversion of one uniform each:
    the smallest k with F(k) > u (exact in distribution up to float64 rounding)."""
    pmf = torch.exp(-rates)
    cdf = pmf.clone()
    counts = torch.zeros_like(rates, dtype=torch.int64)
    for k in range(1, max_count + 1):
        pending = uniform >= cdf
        if not bool(pending.any()):
            break
        counts += pending.to(torch.int64)
        pmf = pmf * rates / k
        cdf = cdf + pmf
    return counts
