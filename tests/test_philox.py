"""The torch backend's counter-based generator (Philox 4x32-10 in integer tensor ops).

* the block function reproduces the published known-answer vectors (Random123's kat_vectors) and
  the tensor form equals plain Python integer arithmetic on random counters and keys;
* streams: an image's draws do not depend on the batch it is in, draw calls are independent
  subsequences, the words cover 0 .. 2**32 - 1 uniformly;
* derived draws: uniform, normal (Kolmogorov-Smirnov against the normal CDF), integers, and the
  Poisson counts of shot noise against the exact Poisson pmf (chi-square) and against numpy's
  Poisson sampler (the reference's), mean and variance per rate;
* on CUDA (skipped without a GPU): the same words and draws as on the CPU.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from robust_transfer.corruptions import _philox
from robust_transfer.corruptions._philox import PhiloxStreams, philox4x32, stream_key

MASK = 0xFFFFFFFF

# Random123 kat_vectors, "philox4x32 10" and "philox4x32 7": counter, key -> output words.
KNOWN_ANSWERS = [
    (10, (0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    (10, (MASK,) * 4, (MASK, MASK), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (10, (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
    (7, (0, 0, 0, 0), (0, 0), (0x5F6FB709, 0x0D893F64, 0x4F121F81, 0x4F730A48)),
]


@pytest.mark.parametrize("rounds, counter, key, expected", KNOWN_ANSWERS)
def test_block_function_matches_known_answers(rounds, counter, key, expected):
    assert tuple(philox4x32(counter, key, rounds)) == expected  # plain ints
    as_tensors = [torch.tensor([word], dtype=torch.int64) for word in counter]
    keys = [torch.tensor([word], dtype=torch.int64) for word in key]
    out = philox4x32(as_tensors, keys, rounds)
    assert tuple(int(word[0]) for word in out) == expected


def test_tensor_block_function_equals_integer_arithmetic():
    rng = np.random.RandomState(0)
    words = rng.randint(0, 2 ** 32, size=(6, 200), dtype=np.uint64).astype(np.int64)
    out = philox4x32([torch.from_numpy(w) for w in words[:4]],
                     [torch.from_numpy(w) for w in words[4:]])
    for column in range(0, 200, 7):
        expected = philox4x32([int(w[column]) for w in words[:4]],
                              [int(w[column]) for w in words[4:]])
        assert [int(word[column]) for word in out] == expected
    assert all(int(word.min()) >= 0 and int(word.max()) <= MASK for word in out)


def test_both_product_forms_give_the_exact_product():
    words = np.random.RandomState(1).randint(0, 2 ** 32, 10_000, dtype=np.uint64)
    words[:3] = (0, 1, MASK)
    tensor = torch.from_numpy(words.astype(np.int64))
    assert _philox.wrapping_products("cpu")
    for multiplier in (_philox.PHILOX_M0, _philox.PHILOX_M1):
        exact = words * np.uint64(multiplier)
        for form in (_philox._mulhilo, _philox._mulhilo_wrapping):
            high, low = form(tensor.clone(), multiplier)
            np.testing.assert_array_equal(high.numpy(), (exact >> np.uint64(32)).astype(np.int64))
            np.testing.assert_array_equal(low.numpy(), (exact & np.uint64(MASK)).astype(np.int64))


def test_block_writer_equals_integer_arithmetic():
    # philox4x32_blocks keeps garbage in the upper 32 bits between rounds: every output word
    # must still equal the Python-integer block function, for keys and counters near 2**32.
    rng = np.random.RandomState(2)
    keys = rng.randint(0, 2 ** 32, size=(3, 2), dtype=np.uint64).astype(np.int64)
    keys[0] = (MASK, MASK)
    k0, k1 = (torch.from_numpy(keys[:, column].copy())[:, None] for column in (0, 1))
    index = torch.tensor([[0, 1, 2 ** 31, MASK - 1, MASK]], dtype=torch.int64)
    for subsequence in (0, 7, MASK):
        out = torch.full((3, 5, 4), -1, dtype=torch.int64)
        _philox.philox4x32_blocks(index, subsequence, k0, k1, out)
        for image in range(3):
            for column in range(5):
                expected = philox4x32((int(index[0, column]), 0, subsequence, 0),
                                      (int(keys[image, 0]), int(keys[image, 1])))
                assert out[image, column].tolist() == expected


def test_portable_products_give_the_same_streams(monkeypatch):
    fast = _streams(["a", "b"]).words((3, 50))
    monkeypatch.setattr(_philox, "native", None)  # the tensor-op forms, not the compiled one
    monkeypatch.setitem(_philox._WRAPPING, "cpu", False)
    assert torch.equal(_streams(["a", "b"]).words((3, 50)), fast)


def test_native_module_is_built():
    # setup.sh builds it (pip install -e .); without it the CPU draws are ~3x slower.
    assert _philox.native is not None, "run scripts/setup.sh (or pip install -e .) to build it"


@pytest.mark.parametrize("shape", ((1,), (7,), (3, 41, 43), (2, 65537)))
def test_native_words_equal_the_tensor_ops(monkeypatch, shape):
    if _philox.native is None:
        pytest.skip("the native module is not built (test_native_module_is_built says why)")
    keys = [(0, 0), (MASK, MASK), (0x243F6A88, 0x85A308D3)]
    native = PhiloxStreams(keys, "cpu")
    native._calls = MASK - 1  # subsequences near 2**32 too
    native_words = [native.words(shape), native.words(shape)]
    monkeypatch.setattr(_philox, "native", None)
    tensor_ops = PhiloxStreams(keys, "cpu")
    tensor_ops._calls = MASK - 1
    assert all(torch.equal(a, tensor_ops.words(shape)) for a in native_words)


def test_native_poisson_inversion_equals_the_tensor_ops(monkeypatch):
    if _philox.native is None:
        pytest.skip("the native module is not built (test_native_module_is_built says why)")
    levels = torch.arange(256.0).repeat(2, 40)  # every grey level, words of all sizes
    for photons in (60, 3):
        native = _streams(["p", "q"]).poisson_uint8_levels(levels, photons)
        with monkeypatch.context() as patch:
            patch.setattr(_philox, "native", None)
            tensor_ops = _streams(["p", "q"]).poisson_uint8_levels(levels, photons)
        assert torch.equal(native, tensor_ops)


def test_native_functions_refuse_mismatched_buffers():
    if _philox.native is None:
        pytest.skip("the native module is not built (test_native_module_is_built says why)")
    keys = np.zeros(2, dtype=np.int64)
    with pytest.raises(ValueError, match="4 words per block"):
        _philox.native.philox_words(np.zeros(12, dtype=np.int64), keys, keys, 0)
    with pytest.raises(ValueError, match="int64"):
        _philox.native.philox_words(np.zeros(16, dtype=np.int32), keys, keys, 0)
    thresholds, guide = _philox._poisson_tables(60.0, "cpu")
    words = np.zeros(3, dtype=np.int64)
    with pytest.raises(ValueError, match="level outside the table"):
        _philox.native.poisson_invert(np.empty(3, dtype=np.int64), words,
                                      np.array([0, 256, 1], dtype=np.int64), thresholds.numpy(),
                                      guide.numpy(), _philox.GUIDE_BITS, _philox._TABLE_LENGTH)


def _streams(names, device="cpu"):
    return PhiloxStreams([stream_key(0, name, "gaussian_noise", 3) for name in names], device)


def test_an_images_draws_do_not_depend_on_its_batch():
    batch = _streams(["a", "b", "c"])
    alone = _streams(["b"])
    for shape in ((5,), (3, 7, 9), ()):
        together = batch.words(shape)
        assert together.shape == (3,) + shape
        assert torch.equal(together[1], alone.words(shape)[0])
    single = _streams(["c"])
    for _ in range(3):  # same call numbers as the batch's calls above
        single.words((1,))
    assert torch.equal(batch.normal((2, 33))[2], single.normal((2, 33))[0])


def test_draw_calls_are_independent_subsequences_and_prefix_stable():
    first, second = _streams(["k"]), _streams(["k"])
    short = first.words((10,))
    long = second.words((1001,))
    assert torch.equal(short[0], long[0, :10])  # a draw is a prefix of the stream's blocks
    again = first.words((10,))
    assert not torch.equal(short, again)  # the next call reads another subsequence
    assert not torch.equal(_streams(["k"]).words((10,)), _streams(["l"]).words((10,)))


def test_words_are_uniform_32_bit():
    words = _streams(["x", "y"]).words((50_000,)).reshape(-1).numpy()
    assert words.min() >= 0 and words.max() <= MASK
    for shift in (0, 8, 16, 24, 28):  # low, middle and high bits are all uniform
        nibbles = (words >> shift) & 0xF
        counts = np.bincount(nibbles, minlength=16)
        assert stats.chisquare(counts).pvalue > 1e-4, shift


def test_uniform_and_normal_draws():
    streams = _streams(["u"])
    uniform = streams.uniform((200_000,))[0].numpy()
    assert uniform.dtype == np.float32 and 0 <= uniform.min() and uniform.max() < 1
    assert stats.kstest(uniform, "uniform").pvalue > 1e-4
    double = streams.uniform((100_000,), dtype=torch.float64)[0].numpy()
    assert double.dtype == np.float64 and 0 <= double.min() and double.max() < 1
    assert stats.kstest(double, "uniform").pvalue > 1e-4
    normal = streams.normal((201_001,))[0].numpy()
    assert normal.shape == (201_001,) and np.isfinite(normal).all()
    assert abs(normal.mean()) < 0.01 and abs(normal.std() - 1) < 0.01
    assert stats.kstest(normal, "norm").pvalue > 1e-4
    assert abs(stats.skew(normal)) < 0.03 and abs(stats.kurtosis(normal)) < 0.06


def test_integer_draws_cover_their_range_uniformly():
    streams = _streams(["i", "j"])
    draws = streams.integers(-3, 3, (60_000,))
    assert set(draws.unique().tolist()) == set(range(-3, 3))
    assert stats.chisquare(np.bincount(draws.reshape(-1).numpy() + 3)).pvalue > 1e-4
    per_image = streams.integers(0, [5, 1000])
    assert per_image.shape == (2,) and 0 <= per_image[0] < 5 and 0 <= per_image[1] < 1000
    with pytest.raises(ValueError, match="high - low"):
        streams.integers(0, 0, (3,))


@pytest.mark.parametrize("photons", (60, 3))
def test_poisson_counts_are_exact_in_distribution(photons):
    streams = _streams(["p"])
    samples = 40_000
    for level in (0, 1, 17, 128, 255):
        rate = level / 255 * photons
        levels = torch.full((1, samples), float(level))
        counts = streams.poisson_uint8_levels(levels, photons)[0].numpy()
        if level == 0:
            assert not counts.any()
            continue
        reference = np.random.RandomState(level).poisson(rate, samples)  # the reference's sampler
        assert counts.mean() == pytest.approx(rate, abs=5 * np.sqrt(rate / samples))
        assert counts.var() == pytest.approx(reference.var(), rel=0.06)
        # Chi-square against the exact pmf, tail bins pooled to an expected count >= 20.
        top = int(stats.poisson.ppf(1 - 1e-4, rate)) + 1
        expected = stats.poisson.pmf(np.arange(top), rate) * samples
        observed = np.bincount(np.minimum(counts, top), minlength=top + 1)
        expected = np.append(expected, samples - expected.sum())
        keep = expected >= 20
        pooled_obs = np.append(observed[keep], observed[~keep].sum())
        pooled_exp = np.append(expected[keep], expected[~keep].sum())
        assert stats.chisquare(pooled_obs, pooled_exp).pvalue > 1e-4, (photons, level)
        # Two-sample KS against numpy's Poisson with the same rate.
        assert stats.ks_2samp(counts, reference).pvalue > 1e-4, (photons, level)


def test_poisson_of_levels_between_grey_levels():
    streams = _streams(["q"])
    photons, samples = 12, 40_000
    levels = torch.full((1, samples), 100.5)  # whole level 100 plus a rest of 0.5 level
    counts = streams.poisson_uint8_levels(levels, photons)[0].numpy()
    rate = 100.5 / 255 * photons
    assert counts.mean() == pytest.approx(rate, abs=5 * np.sqrt(rate / samples))
    assert counts.var() == pytest.approx(rate, rel=0.06)
    # Float levels within 1e-3 of a grey level draw what the grey level draws.
    near = _streams(["q"]).poisson_uint8_levels(torch.full((1, 50), 99.9999), photons)
    exact = _streams(["q"]).poisson_uint8_levels(torch.full((1, 50), 100.0), photons)
    assert torch.equal(near, exact)


def test_poisson_table_is_a_cdf():
    table = _philox.poisson_inverse_table(25.0)
    rows = table - (np.arange(256, dtype=np.int64) << 33)[:, None]
    assert (np.diff(rows, axis=1) >= 0).all() and (rows[:, -1] == 2 ** 32).all()
    assert (np.diff(table.reshape(-1)) >= 0).all()  # one sorted array for the search


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_draws_equal_cpu_draws():
    names = ["a", 7, None]
    cpu, cuda = _streams(names), _streams(names, "cuda")
    assert torch.equal(cpu.words((3, 41, 43)), cuda.words((3, 41, 43)).cpu())
    assert torch.equal(cpu.integers(-4, 4, (1000,)), cuda.integers(-4, 4, (1000,)).cpu())
    assert torch.equal(cpu.uniform((999,)), cuda.uniform((999,)).cpu())
    levels = torch.arange(256.0).repeat(3, 4)
    assert torch.equal(cpu.poisson_uint8_levels(levels, 25),
                       cuda.poisson_uint8_levels(levels.cuda(), 25).cpu())
    # log/sin/cos may round differently on the two devices: a few float32 ulp.
    assert torch.allclose(cpu.normal((5000,)), cuda.normal((5000,)).cpu(), rtol=0, atol=1e-5)


def test_torch_seed_scheme_is_frozen():
    # The torch backend's published streams: block b of draw call j of an image is Philox 4x32-10
    # of counter (b, 0, j, 0) under the image's key. Changing this needs a new TORCH_SEED_SCHEME.
    from robust_transfer.corruptions import TORCH_SEED_SCHEME

    assert TORCH_SEED_SCHEME == "philox4x32-10/v2"
    key = stream_key(0, "val/0001.JPEG", "gaussian_noise", 3)
    streams = PhiloxStreams([key], "cpu")
    first_call, second_call = streams.words((8,)), streams.words((4,))
    expected = philox4x32((0, 0, 0, 0), key) + philox4x32((1, 0, 0, 0), key)
    assert first_call[0].tolist() == expected
    assert second_call[0].tolist() == philox4x32((0, 0, 1, 0), key)
