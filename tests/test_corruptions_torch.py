"""The torch backend: fidelity to the numpy reference, determinism, batching, API (CPU only).

Fidelity, three ways (docs/corruptions.md lists the measured numbers):

* deterministic corruptions: PSNR >= 40 dB against the reference at every severity, on real
  photographs, an odd size and a grey image;
* random corruptions with the reference's own random numbers: the tests replay a
  ``RandomState`` through the backend's samplers in the order the reference draws, which makes
  the torch code compute the reference's image -- PSNR >= 40 dB. This checks each algorithm
  (angles, crops, thresholds, fractal, displacement fields, the sequential pixel shuffle) and
  the parameters it draws with;
* random corruptions in distribution, with the backend's own Philox draws, over 20 seeds: mean and std
  of |corrupted - clean| within 5 % of the reference's and the per-channel mean within 2 grey
  levels -- for the corruptions whose randomness is per pixel. Where a handful of numbers per
  image decide the picture (an angle, a texture and crop, a fractal, where drops fall), 20 draws
  estimate those statistics with a sampling error above the tolerance (measured: frost's mean
  9 % off, fog's channel mean 12 levels off with 20 draws, still 3 levels with 200), so those
  are covered by the replay test above.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from robust_transfer import corruptions as C
from robust_transfer.corruptions import _torch  # noqa: F401 -- registers the torch corruptions
from robust_transfer.corruptions import (_helpers, _torch_geometry, _torch_ops, _torch_pillow,
                                         _torch_samplers, _torch_threads, _torch_weather)
from robust_transfer.corruptions._registry import registered_torch_corruptions

ALL = C.get_corruption_names("all")
DETERMINISTIC = ("brightness", "contrast", "saturate", "defocus_blur", "gaussian_blur",
                 "zoom_blur", "pixelate", "jpeg_compression")
REPLAYABLE = ("gaussian_noise", "impulse_noise", "speckle_noise", "glass_blur", "motion_blur",
              "snow", "frost", "fog", "elastic_transform", "spatter")
PER_PIXEL_RANDOM = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise",
                    "glass_blur", "elastic_transform")
IMAGES = ("astronaut_128x160", "chelsea_128x160", "coffee_97x131", "camera_grey_96x128")
MIN_PSNR = 40.0


def psnr(ours: np.ndarray, theirs: np.ndarray) -> float:
    mse = np.mean((ours.astype(np.float64) - theirs.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def _batch(image: np.ndarray, copies: int = 1) -> torch.Tensor:
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].repeat(copies, 1, 1, 1)


def test_every_corruption_has_a_torch_implementation():
    assert sorted(registered_torch_corruptions()) == sorted(ALL)
    assert sorted(DETERMINISTIC + REPLAYABLE + ("shot_noise",)) == sorted(ALL)


# ----------------------------------------------------------------------------- deterministic


@pytest.mark.parametrize("image_name", IMAGES)
@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_corruptions_match_reference(request, name, image_name):
    image = request.getfixturevalue(image_name)
    for severity in C.SEVERITIES:
        ours = C.corrupt(image, name, severity, backend="torch")
        theirs = C.corrupt(image, name, severity, backend="numpy")
        assert ours.shape == theirs.shape and ours.dtype == np.uint8
        assert psnr(ours, theirs) >= MIN_PSNR, f"{name} s{severity} {image_name}"


@pytest.mark.parametrize("name", ("pixelate", "jpeg_compression", "contrast"))
def test_pillow_and_linear_corruptions_are_identical(coffee_97x131, name):
    for severity in C.SEVERITIES:
        np.testing.assert_array_equal(C.corrupt(coffee_97x131, name, severity, backend="torch"),
                                      C.corrupt(coffee_97x131, name, severity))


# ----------------------------------------------------------------------------- same draws


class _Replay:
    """Stand-ins for ``_torch_samplers``: draw from one ``RandomState`` in the order and
    layout the reference uses (images (H, W, 3); the shuffle's draws row by row from the
    bottom right), image after image of the batch."""

    def __init__(self, rng: np.random.RandomState):
        self.rng = rng

    @staticmethod
    def _tensor(array) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    def _per_image(self, streams, draw) -> torch.Tensor:
        return torch.stack([self._tensor(draw()) for _ in range(streams.count)])

    def randn(self, streams, shape):
        return self._per_image(streams, lambda: self.rng.standard_normal(tuple(shape)))

    def rand(self, streams, shape):
        return self._per_image(streams, lambda: self.rng.random_sample(tuple(shape)))

    def pixel_randn(self, streams, shape):
        return self._per_image(streams, lambda: self.rng.standard_normal(
            (shape[1], shape[2], shape[0])).transpose(2, 0, 1))

    def pixel_rand(self, streams, shape):
        return self._per_image(streams, lambda: self.rng.random_sample(
            (shape[1], shape[2], shape[0])).transpose(2, 0, 1))

    def randint_array(self, streams, low, high, shape):
        def one_image():
            steps = [self.rng.randint(low, high, size=tuple(shape[1:]))[::-1, ::-1]
                     for _ in range(shape[0])]
            return torch.from_numpy(np.ascontiguousarray(np.stack(steps)))
        return torch.stack([one_image() for _ in range(streams.count)])

    def uniform_scalar(self, streams, low, high):
        return [float(self.rng.uniform(low, high)) for _ in range(streams.count)]

    def randint(self, streams, high, low=0):
        highs = high if isinstance(high, (list, tuple)) else [high] * streams.count
        return [int(self.rng.randint(low, h)) for h in highs]


@pytest.fixture
def replay(monkeypatch):
    def install(seed: int) -> None:
        stand_in = _Replay(np.random.RandomState(seed))
        for name in ("randn", "rand", "pixel_randn", "pixel_rand", "randint_array",
                     "uniform_scalar", "randint"):
            monkeypatch.setattr(_torch_samplers, name, getattr(stand_in, name))
    return install


@pytest.mark.parametrize("image_name", ("astronaut_128x160", "coffee_97x131"))
@pytest.mark.parametrize("name", REPLAYABLE)
def test_random_corruptions_match_reference_with_its_draws(request, replay, name, image_name):
    image = request.getfixturevalue(image_name)
    for severity in C.SEVERITIES:
        seed = 100 + severity
        replay(seed)
        ours = C.corrupt(image, name, severity, backend="torch")
        theirs = C.corrupt_with_rng(image, name, severity, np.random.RandomState(seed))
        assert psnr(ours, theirs) >= MIN_PSNR, f"{name} s{severity} {image_name}"


def test_glass_shuffle_is_the_reference_shuffle_exactly(coffee_97x131):
    height, width = coffee_97x131.shape[:2]
    for max_delta, iterations in ((1, 2), (2, 3), (4, 2)):
        theirs = _helpers.glass_shuffle(coffee_97x131, max_delta, iterations,
                                        np.random.RandomState(5))
        rng = np.random.RandomState(5)
        shape = (height - 2 * max_delta, width - 2 * max_delta, 2)
        draws = np.stack([rng.randint(-max_delta, max_delta, size=shape)[::-1, ::-1]
                          for _ in range(iterations)])
        sources = _torch_geometry.glass_shuffle_sources(height, width, max_delta,
                                                   torch.from_numpy(draws.copy())[None])
        ours = coffee_97x131.reshape(-1, 3)[sources[0].numpy()].reshape(coffee_97x131.shape)
        np.testing.assert_array_equal(ours, theirs)


def test_building_blocks_match_scipy_and_opencv(coffee_97x131):
    import cv2
    from scipy import ndimage

    unit = (coffee_97x131 / 255.0).astype(np.float32)
    batch = torch.from_numpy(unit).permute(2, 0, 1)[None]
    for mode in ("nearest", "reflect", "mirror"):
        for sigma in (0.7, 3.0, (0.97, 1.31), 25.0):  # taps, matrices, per axis, wider than image
            pair = (sigma, sigma) if np.isscalar(sigma) else sigma
            theirs = ndimage.gaussian_filter(unit.astype(np.float64), pair + (0,), mode=mode)
            ours = _torch_ops.gaussian_filter(batch, sigma, mode=mode)[0].permute(1, 2, 0).numpy()
            assert np.abs(ours - theirs).max() < 1e-5, (mode, sigma)
    for radius, alias in ((3, 0.1), (10, 0.5)):
        kernel = _helpers.disk_kernel(radius, alias)
        ours = _torch_ops.filter2d_reflect101(batch, kernel)[0].permute(1, 2, 0).numpy()
        assert np.abs(ours - cv2.filter2D(unit, -1, kernel)).max() < 1e-5
    for zoom in (1.06, 1.27, 2.5, 4.5):
        for crop in (True, False):
            theirs = _helpers.clipped_zoom(unit, zoom, crop)
            ours = _torch_geometry.clipped_zoom(batch, zoom, crop)[0].permute(1, 2, 0).numpy()
            assert ours.shape == theirs.shape and np.abs(ours - theirs).max() < 1e-4
    rng = np.random.RandomState(0)
    shift_y, shift_x = rng.uniform(-6, 6, (2,) + unit.shape[:2])
    grid_y, grid_x = np.meshgrid(*map(np.arange, unit.shape[:2]), indexing="ij")
    theirs = ndimage.map_coordinates(unit[..., 0].astype(np.float64),
                                     (grid_y + shift_y, grid_x + shift_x), order=1, mode="reflect")
    ours = _torch_geometry.remap_bilinear_reflect(
        batch[:, :1], torch.from_numpy(shift_y).float()[None],
        torch.from_numpy(shift_x).float()[None])
    assert np.abs(ours[0, 0].numpy() - theirs).max() < 1e-4


def test_banded_filter_products_equal_the_dense_products():
    # Wide Gaussians are applied block by block over the filter matrices' bands: the result
    # must be the dense product's, on images spanning many blocks, for every border rule.
    from robust_transfer.corruptions import _banded

    x = torch.rand((2, 2, 300, 450), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for mode in ("nearest", "reflect", "mirror"):
        for sigma in (3.0, 9.5, 80.0):  # 80: a band wider than the image (reflected twice)
            rows = _torch_ops.gaussian_matrix(300, sigma, mode, 3.0, "cpu").double()
            cols = _torch_ops.gaussian_matrix(450, sigma, mode, 3.0, "cpu").double()
            dense = rows @ (x @ cols.T)
            banded = _banded.filter_second_last_axis(
                _banded.filter_last_axis(x, _banded.band_blocks(cols)), _banded.band_blocks(rows))
            assert banded.shape == dense.shape
            assert (banded - dense).abs().max() < 1e-12, (mode, sigma)
    blocks = _banded.band_blocks(_torch_ops.gaussian_matrix(640, 6.4, "reflect", 3.0, "cpu"))
    assert max(end - first for first, end, _ in blocks) <= _banded.BAND_BLOCK + 2 * 20


def test_batched_fft_filter_equals_the_per_image_loop():
    # Off the CPU the disk filter transforms the whole batch at once; same values, to rounding.
    x = torch.rand((3, 3, 45, 67), generator=torch.Generator().manual_seed(2))
    kernel = _helpers.disk_kernel(6, 0.5)
    looped = _torch_ops.filter2d_reflect101(x, kernel, per_image=True)
    batched = _torch_ops.filter2d_reflect101(x, kernel, per_image=False)
    assert batched.is_contiguous() and batched.shape == x.shape
    assert (batched - looped).abs().max() < 1e-5
    assert torch.equal(_torch_ops.filter2d_reflect101(x, kernel), looped)  # the CPU default


def test_frost_crops_gathered_equal_the_sliced_crops():
    # The GPU path gathers all crops at once; run it on the CPU against the per-image slices.
    indices, tops, lefts = [0, 4, 2, 4], [0, 7, 31, 3], [5, 0, 19, 40]
    sliced = _torch_weather._frost_crops(indices, tops, lefts, 40, 56, torch.device("cpu"))
    stacked = _torch_weather._frost_stack(40, 56, "cpu")
    gathered = _torch_weather._frost_crops(indices, tops, lefts, 40, 56, "cpu", gather=True)
    assert torch.equal(gathered, sliced)
    assert torch.equal(sliced[2], stacked[2, :, 31:71, 19:75])


def test_batched_motion_blur_equals_the_per_image_loop():
    # The GPU path gathers every image's shifted run in one call per tap; run it on the CPU
    # against the per-image loop, including tiny images where taps stop early per image.
    for shape, radius, sigma, angles in (((3, 3, 45, 67), 10, 3, [-44.0, 3.3, 40.1]),
                                         ((2, 1, 33, 40), 20, 15, [0.0, 44.0])):
        x = torch.rand(shape, generator=torch.Generator().manual_seed(0)) * 255
        pad = 2 * radius + 1
        flat = torch.nn.functional.pad(x, (pad,) * 4, mode="replicate").reshape(
            shape[0], shape[1], -1)
        span = (shape[2] - 1) * (shape[3] + 2 * pad) + shape[3]
        gathered = _torch_geometry._motion_blur_gathered(flat, radius, sigma, angles, shape, pad, span)
        assert torch.equal(gathered, _torch_geometry.motion_blur(x, radius, sigma, angles))


def test_pixelate_is_bit_exact_with_pillow():
    from PIL import Image

    rng = np.random.RandomState(0)
    for height, width in ((97, 131), (33, 45), (480, 640)):
        image = rng.randint(0, 256, (height, width, 3)).astype(np.uint8)
        for scale in (0.6, 0.5, 0.4, 0.3, 0.25):
            small = (int(width * scale), int(height * scale))
            theirs = Image.fromarray(image).resize(small, Image.BOX).resize((width, height),
                                                                             Image.NEAREST)
            ours = _torch_pillow.pil_pixelate(_batch(image), small)[0].permute(1, 2, 0).numpy()
            np.testing.assert_array_equal(ours, np.asarray(theirs))


# ----------------------------------------------------------------------------- in distribution


def _abs_diff_stats(outputs: np.ndarray, clean: np.ndarray):
    diffs = np.abs(outputs.astype(np.float64) - clean.astype(np.float64))
    return diffs.mean(), diffs.std(), outputs.reshape(-1, 3).mean(axis=0)


@pytest.mark.parametrize("name", PER_PIXEL_RANDOM)
def test_random_corruptions_match_reference_in_distribution(astronaut_128x160, name):
    image = astronaut_128x160[::2, ::2].copy()  # 64x80: 20 seeds x 5 severities stay fast
    keys = list(range(20))
    batch = _batch(image, len(keys))
    for severity in C.SEVERITIES:
        ours = C.corrupt_batch(batch, name, severity, seed=0, keys=keys).permute(0, 2, 3, 1)
        theirs = np.stack([C.corrupt(image, name, severity, seed=0, key=k) for k in keys])
        our_mean, our_std, our_channels = _abs_diff_stats(ours.numpy(), image)
        ref_mean, ref_std, ref_channels = _abs_diff_stats(theirs, image)
        context = f"{name} s{severity}"
        assert our_mean == pytest.approx(ref_mean, rel=0.05), context
        assert our_std == pytest.approx(ref_std, rel=0.05), context
        assert np.abs(our_channels - ref_channels).max() <= 2.0, context


def test_samplers_draw_the_documented_ranges():
    from robust_transfer.corruptions._philox import PhiloxStreams

    streams = PhiloxStreams([(i, 7) for i in range(200)], "cpu")
    angles = _torch_samplers.uniform_scalar(streams, -45, 45)
    assert len(angles) == 200 and -45 <= min(angles) < -40 and 40 < max(angles) < 45
    assert set(_torch_samplers.randint(streams, [5] * 200)) == set(range(5))
    draws = _torch_samplers.randint_array(streams, -3, 3, (20,))
    assert draws.shape == (200, 20) and set(draws.unique().tolist()) == set(range(-3, 3))
    assert _torch_samplers.pixel_randn(streams, (3, 4, 5)).shape == (200, 3, 4, 5)


# ----------------------------------------------------------------------------- determinism


@pytest.fixture(scope="module")
def three_photos():
    import skimage.data
    from PIL import Image

    photos = [np.asarray(Image.fromarray(getattr(skimage.data, n)()).convert("RGB")
                         .resize((67, 45))) for n in ("astronaut", "coffee", "chelsea")]
    return torch.from_numpy(np.stack(photos)).permute(0, 3, 1, 2).contiguous()


@pytest.mark.parametrize("name", ALL)
def test_batch_equals_single_calls_and_reruns(three_photos, name):
    keys = ["a.png", 7, None]
    for severity in (1, 5):
        batch = C.corrupt_batch(three_photos, name, severity, seed=3, keys=keys)
        assert batch.shape == three_photos.shape and batch.dtype == torch.uint8
        assert torch.equal(batch, C.corrupt_batch(three_photos, name, severity, seed=3, keys=keys))
        for index, key in enumerate(keys):
            single = C.corrupt(three_photos[index].permute(1, 2, 0).numpy(), name, severity,
                               seed=3, key=key, backend="torch")
            np.testing.assert_array_equal(batch[index].permute(1, 2, 0).numpy(), single)


@pytest.mark.parametrize("name", ALL)
def test_cpu_threads_do_not_change_the_bytes(three_photos, name, monkeypatch):
    # With T > 1 torch threads the CPU batch is split over T Python threads (one intra-op
    # thread each); the output must be the single-thread output, and the setting restored.
    monkeypatch.setattr(_torch_threads, "usable_cpu_threads", lambda threads: threads)  # ignore load
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = C.corrupt_batch(three_photos, name, 4, seed=9, keys=["x", "y", "z"])
        torch.set_num_threads(2)
        split = C.corrupt_batch(three_photos, name, 4, seed=9, keys=["x", "y", "z"])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(single, split)


def test_usable_cpu_threads_leave_out_busy_cores(monkeypatch):
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    for load, threads, expected in ((0.2, 2, 2), (1.2, 2, 2), (2.0, 2, 1), (3.7, 2, 1),
                                    (0.0, 8, 2), (0.0, 1, 1)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
        assert _torch_threads.usable_cpu_threads(threads) == expected, (load, threads)


def test_shared_parts_keep_their_order_and_raise_errors():
    assert _torch_threads.share_parts([[1], [2], [3]], lambda part: part[0] * 10) == [10, 20, 30]
    with pytest.raises(ZeroDivisionError):
        _torch_threads.share_parts([[1], [0]], lambda part: 1 / part[0])


def test_keys_and_seed_choose_the_stream(three_photos):
    images = three_photos[:1].repeat(3, 1, 1, 1)
    out = C.corrupt_batch(images, "gaussian_noise", 3, seed=0)  # default keys: 0, 1, 2
    assert not torch.equal(out[0], out[1])
    np.testing.assert_array_equal(
        out[2].numpy(),
        C.corrupt_batch(images[:1], "gaussian_noise", 3, seed=0, keys=[2])[0].numpy())
    other_seed = C.corrupt_batch(images, "gaussian_noise", 3, seed=1)
    assert not torch.equal(out, other_seed)
    # Per-image Philox keys come from the same hash as the numpy backend's streams.
    from robust_transfer.corruptions._philox import stream_key
    from robust_transfer.corruptions._seeding import stream_digest

    digest = stream_digest(0, "k", "fog", 2)
    assert stream_key(0, "k", "fog", 2) == (int.from_bytes(digest[:4], "little"),
                                            int.from_bytes(digest[4:8], "little"))


def test_torch_global_random_state_is_neither_read_nor_changed(three_photos):
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    outputs = [C.corrupt_batch(three_photos, name, 3) for name in ALL]
    assert torch.equal(before, torch.get_rng_state())
    torch.manual_seed(999)
    for name, out in zip(ALL, outputs):
        assert torch.equal(out, C.corrupt_batch(three_photos, name, 3)), name


@pytest.mark.parametrize("name", ALL)
def test_float_inputs_give_the_uint8_result_within_one_level(three_photos, name):
    uint8 = C.corrupt_batch(three_photos, name, 4, seed=2).to(torch.float32)
    for value_range in (1.0, 255.0):
        images = three_photos.to(torch.float32) * (value_range / 255.0)
        out = C.corrupt_batch(images, name, 4, seed=2, value_range=value_range)
        assert out.dtype == torch.float32 and out.shape == images.shape
        assert out.min() >= 0 and out.max() <= value_range
        scaled = out * (255.0 / value_range)
        # Same computation, not truncated to whole levels (float rounding of the scaling aside).
        assert (scaled - uint8).abs().max() <= 1.0 + 1e-3, value_range
    half = C.corrupt_batch(three_photos.half() / 255, name, 4, seed=2, value_range=1.0)
    assert half.dtype == torch.float16


def test_grey_and_rgba_batches_follow_the_numpy_rules(three_photos):
    grey = three_photos[:, 1:2]
    replicated = grey.expand(-1, 3, -1, -1).contiguous()
    for name in ("gaussian_noise", "fog", "frost", "zoom_blur"):
        out = C.corrupt_batch(grey, name, 3)
        assert out.shape == grey.shape
        assert torch.equal(out, C.corrupt_batch(replicated, name, 3)[:, :1])
        alpha = torch.arange(45 * 67, dtype=torch.int32).reshape(1, 1, 45, 67).to(torch.uint8)
        rgba = torch.cat([three_photos, alpha.expand(3, -1, -1, -1)], dim=1)
        out = C.corrupt_batch(rgba, name, 3)
        assert torch.equal(out[:, 3:], rgba[:, 3:])
        assert torch.equal(out[:, :3], C.corrupt_batch(three_photos, name, 3))


def test_single_image_layouts_with_the_torch_backend(astronaut_32):
    grey = astronaut_32[..., 1]
    for name in ("snow", "spatter", "glass_blur"):
        out = C.corrupt(grey, name, 3, seed=1, key="g", backend="torch")
        assert out.shape == grey.shape and out.dtype == np.uint8
        expected = C.corrupt(np.repeat(grey[..., None], 3, axis=2), name, 3, seed=1, key="g",
                             backend="torch")[..., 0]
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("severity", C.SEVERITIES)
def test_every_corruption_runs_on_small_odd_images(astronaut_32, severity):
    from PIL import Image

    image = np.asarray(Image.fromarray(astronaut_32).resize((45, 33)))
    for name in ALL:
        out = C.corrupt(image, name, severity, seed=1, key="tiny", backend="torch")
        assert out.shape == image.shape and out.dtype == np.uint8 and out.flags.writeable


def test_large_non_square_fog_and_frost():
    images = torch.full((1, 3, 700, 1030), 90, dtype=torch.uint8)
    for name in ("fog", "frost"):
        out = C.corrupt_batch(images, name, 4)
        assert out.shape == images.shape and out.float().std() > 1


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("images, kwargs, message", [
    (np.zeros((1, 3, 40, 40), np.uint8), {}, "must be a torch.Tensor"),
    (torch.zeros(3, 40, 40, dtype=torch.uint8), {}, "shape \\(N, C, H, W\\)"),
    (torch.zeros(1, 2, 40, 40, dtype=torch.uint8), {}, "1 \\(grey\\), 3 \\(RGB\\) or 4"),
    (torch.zeros(1, 40, 40, 3, dtype=torch.uint8), {}, "channels come second"),
    (torch.zeros(1, 3, 31, 40, dtype=torch.uint8), {}, "at least 32x32 pixels, got 31x40"),
    (torch.zeros(1, 3, 40, 40), {}, "need value_range"),
    (torch.zeros(1, 3, 40, 40, dtype=torch.int32), {}, "uint8 or floating point"),
    (torch.full((1, 3, 40, 40), 2.0), {"value_range": 1.0}, "must lie in \\[0, 1.0\\]"),
    (torch.full((1, 3, 40, 40), -0.5), {"value_range": 1.0}, "must lie in"),
    (torch.zeros(1, 3, 40, 40, dtype=torch.uint8), {"value_range": 1.0}, "must be None or 255"),
    (torch.zeros(1, 3, 40, 40), {"value_range": -1}, "positive number"),
    (torch.zeros(2, 3, 40, 40, dtype=torch.uint8), {"keys": ["a"]}, "one key per image"),
    (torch.zeros(2, 3, 40, 40, dtype=torch.uint8), {"keys": "ab"}, "sequence of 2 keys"),
    (torch.zeros(1, 3, 40, 40, dtype=torch.uint8), {"keys": [1.5]}, "key must be None, a str"),
    (torch.zeros(1, 3, 40, 40, dtype=torch.uint8), {"seed": "0"}, "seed must be an integer"),
    (torch.zeros(1, 3, 40, 40, dtype=torch.uint8), {"rng_device": "cpu"},
     "rng_device='cpu' was removed with seed scheme philox4x32-10/v2"),
])
def test_bad_batches_raise_value_error(images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        C.corrupt_batch(images, "fog", 1, **kwargs)


def test_bad_name_and_severity_raise_value_error():
    images = torch.zeros(1, 3, 40, 40, dtype=torch.uint8)
    with pytest.raises(ValueError, match="unknown corruption 'haze'; allowed"):
        C.corrupt_batch(images, "haze", 1)
    with pytest.raises(ValueError, match="severity must be an integer in 1..5"):
        C.corrupt_batch(images, "fog", 6)


def test_empty_batch_and_non_contiguous_input(three_photos):
    assert C.corrupt_batch(three_photos[:0], "fog", 2).shape == (0, 3, 45, 67)
    flipped = three_photos.flip(-1)
    assert torch.equal(C.corrupt_batch(flipped, "fog", 2),
                       C.corrupt_batch(flipped.contiguous(), "fog", 2))
    channels_last = three_photos.contiguous(memory_format=torch.channels_last)
    assert torch.equal(C.corrupt_batch(channels_last, "motion_blur", 2),
                       C.corrupt_batch(three_photos, "motion_blur", 2))


# ----------------------------------------------------------------------------- preview


def test_backend_comparison_grid_and_cli(tmp_path, astronaut_32):
    import argparse

    from PIL import Image

    from robust_transfer.cli_corrupt import add_corruption_commands
    from robust_transfer.corruptions.preview import make_backend_comparison_grid

    grid = make_backend_comparison_grid(astronaut_32, ["fog", "pixelate"], [1, 5],
                                        tmp_path / "cmp.png")
    assert (tmp_path / "cmp.png").is_file()
    assert grid.size[0] > 4 * 32 and grid.size[1] > 2 * 32  # 2 rows x (2 severities x 2)
    with pytest.raises(ValueError, match="severities"):
        make_backend_comparison_grid(astronaut_32, "fog", [0])

    Image.fromarray(astronaut_32).save(tmp_path / "in.png")
    parser = argparse.ArgumentParser()
    add_corruption_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["preview", str(tmp_path / "in.png"), "--compare-backends",
                              "--corruptions", "blur", "-o", str(tmp_path / "cli.png")])
    assert args.func(args) == 0
    assert Image.open(tmp_path / "cli.png").size[1] > 4 * 32  # 4 blur rows
