"""The tensor water-drop shading of spatter (``_torch_spatter``) against OpenCV, bit for bit.

Each stage is compared with the OpenCV call it replaces (Canny, distanceTransform + TRUNC,
equalizeHist, filter2D, blur) and the whole mask with the numpy backend's
``water_spatter_mask``, on random smooth layers and on real liquid layers of spatter
severities 1-3 at odd and full (480x640) sizes. The distance transform is checked in both
arithmetics OpenCV has (float32 through Intel IPP, 16.16 fixed point without).
"""
from __future__ import annotations

import contextlib

import cv2
import numpy as np
import pytest
import torch

from robust_transfer import corruptions as C
from robust_transfer.corruptions import _helpers
from robust_transfer.corruptions import _torch  # noqa: F401 -- registers the torch corruptions
from robust_transfer.corruptions import _torch_spatter as P
from robust_transfer.corruptions import _torch_weather
from robust_transfer.corruptions._numpy import water_spatter_mask
from robust_transfer.corruptions._params import SPATTER_PARAMS

WATER_SEVERITIES = (1, 2, 3)
SIZES = ((37, 53), (480, 640))


def liquid_layer(severity: int, height: int, width: int, seed: int) -> tuple[np.ndarray, float]:
    """A thresholded liquid layer as spatter draws it (float32, as the torch backend holds it)
    and the severity's strength."""
    mean, std, blur, threshold, strength, _ = SPATTER_PARAMS[severity - 1]
    rng = np.random.RandomState(seed)
    liquid = _helpers.gaussian_filter_2d(rng.normal(size=(height, width), loc=mean, scale=std),
                                         blur)
    liquid[liquid < threshold] = 0
    return liquid.astype(np.float32), strength


def liquid_uint8(liquid: np.ndarray) -> np.ndarray:
    return (liquid.astype(np.float64) * 255).astype(np.uint8)


def smooth_layer(height: int, width: int, seed: int) -> np.ndarray:
    """Random smooth uint8 image stretched to 0..255 (many weak and strong gradients)."""
    rng = np.random.RandomState(seed)
    noise = (rng.rand(height, width) * 255).astype(np.uint8)
    blurred = cv2.GaussianBlur(noise, (0, 0), 1.0 + seed % 4)
    return cv2.normalize(blurred, None, 0, 255, cv2.NORM_MINMAX)


def batch(*images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(images))


def cv2_truncated_distance(edges: np.ndarray) -> np.ndarray:
    distance = cv2.distanceTransform(255 - edges, cv2.DIST_L2, 5)
    return cv2.threshold(distance, 20, 20, cv2.THRESH_TRUNC)[1]


@contextlib.contextmanager
def opencv_ipp(enabled: bool):
    """OpenCV with Intel IPP on or off for the block (skips if this build cannot)."""
    previous = cv2.ipp.useIPP()
    cv2.ipp.setUseIPP(enabled)
    try:
        if cv2.ipp.useIPP() != enabled:
            pytest.skip(f"this OpenCV build cannot turn IPP {'on' if enabled else 'off'}")
        yield
    finally:
        cv2.ipp.setUseIPP(previous)


ARITHMETICS = (("float32", True), ("fixed", False))


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Many short ops: on a shared machine, ops split over 2 threads wait for a descheduled
    thread at each end (measured 3 s instead of 0.1 s per test); the results do not depend on
    the thread count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ----------------------------------------------------------------------------- Canny


@pytest.mark.parametrize("height,width", [(37, 53), (97, 131), (1, 7), (480, 640)])
def test_canny_equals_opencv_on_smooth_layers(height, width):
    images = [smooth_layer(height, width, seed) for seed in range(4)]
    ours = P.canny(batch(*images)).numpy()
    for image, edges in zip(images, ours):
        np.testing.assert_array_equal(edges, cv2.Canny(image, 50, 150))


@pytest.mark.parametrize("severity", WATER_SEVERITIES)
@pytest.mark.parametrize("height,width", SIZES)
def test_canny_equals_opencv_on_liquid_layers(severity, height, width):
    images = [liquid_uint8(liquid_layer(severity, height, width, seed)[0]) for seed in range(3)]
    ours = P.canny(batch(*images)).numpy()
    for image, edges in zip(images, ours):
        assert edges.any()
        np.testing.assert_array_equal(edges, cv2.Canny(image, 50, 150))


def test_canny_hysteresis_follows_long_weak_chains():
    """A ramp whose gradient is strong only at one end: the weak edge pixels are kept only
    through a chain longer than one convergence check (8 growth steps)."""
    image = np.zeros((40, 60), np.uint8)
    image[:, 30:] = 30  # a step of 30 grey levels: magnitude 120, weak (50 < m <= 150)
    image[:3, 30:] = 80  # near the top the step is strong
    ours = P.canny(batch(image)).numpy()[0]
    reference = cv2.Canny(image, 50, 150)
    assert reference[35].any()  # the weak part survives through the chain
    np.testing.assert_array_equal(ours, reference)


# ----------------------------------------------------------------------------- distance


@pytest.mark.parametrize("arithmetic,ipp", ARITHMETICS)
@pytest.mark.parametrize("severity", WATER_SEVERITIES)
def test_truncated_distance_equals_opencv(arithmetic, ipp, severity):
    with opencv_ipp(ipp):
        assert P.chamfer_arithmetic() == arithmetic
        for height, width in SIZES + ((5, 64),):
            edges = [cv2.Canny(liquid_uint8(liquid_layer(severity, height, width, seed)[0]),
                               50, 150) for seed in range(2)]
            ours = P.truncated_chamfer_distance(batch(*edges) > 0, arithmetic).numpy()
            for edge, distance in zip(edges, ours):
                np.testing.assert_array_equal(distance, cv2_truncated_distance(edge))


@pytest.mark.parametrize("arithmetic,ipp", ARITHMETICS)
def test_chamfer_steps_are_the_fewest_exact(arithmetic, ipp):
    """19 relaxation steps per pass are needed and enough: a lone edge pixel 19 pixels from the
    image's end of its row (forward pass) or start (backward pass)."""
    for column in (0, 19):
        edges = np.zeros((9, 20), np.uint8)
        edges[4, column] = 255
        with opencv_ipp(ipp):
            reference = cv2_truncated_distance(edges)
        assert 19 in reference
        zero = batch(edges) > 0
        exact = P.truncated_chamfer_distance(zero, arithmetic).numpy()[0]
        np.testing.assert_array_equal(exact, reference)
        short = P.truncated_chamfer_distance(zero, arithmetic, steps=P.CHAMFER_STEPS - 1)
        assert not np.array_equal(short.numpy()[0], reference)


def test_distance_without_edges_is_the_cap():
    zero = torch.zeros(2, 11, 13, dtype=torch.bool)
    for arithmetic, _ in ARITHMETICS:
        assert torch.equal(P.truncated_chamfer_distance(zero, arithmetic),
                           torch.full((2, 11, 13), 20.0))


# ----------------------------------------------------------------------------- the other stages


def test_equalize_hist_equals_opencv():
    rng = np.random.RandomState(0)
    images = [
        (rng.rand(37, 53) * 255).astype(np.uint8),
        rng.randint(0, 21, size=(37, 53)).astype(np.uint8),  # the blurred distances' range
        rng.randint(3, 6, size=(37, 53)).astype(np.uint8),  # first level above 0
        np.full((37, 53), 7, np.uint8),  # constant: OpenCV keeps the value
        np.where(rng.rand(37, 53) < 0.999, 0, 255).astype(np.uint8),
    ]
    ours = P.equalize_hist(batch(*images)).numpy()
    for image, equalised in zip(images, ours):
        np.testing.assert_array_equal(equalised, cv2.equalizeHist(image))
    few_levels = [image for image in images if image.max() <= 20]
    assert len(few_levels) == 3
    counted = P.equalize_hist(batch(*few_levels), levels=21).numpy()
    for image, equalised in zip(few_levels, counted):
        np.testing.assert_array_equal(equalised, cv2.equalizeHist(image))


@pytest.mark.parametrize("height,width", [(37, 53), (2, 2), (1, 5), (6, 1)])
def test_emboss_and_box_blur_equal_opencv(height, width):
    rng = np.random.RandomState(height * width)
    image = (rng.rand(height, width) * 255).astype(np.uint8)
    emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
    np.testing.assert_array_equal(P.emboss(batch(image)).numpy()[0],
                                  cv2.filter2D(image, cv2.CV_8U, emboss))
    sums = P.box_sum_3x3(batch(image).to(torch.int32))
    blurred = torch.div(sums + 4, 9, rounding_mode="floor").numpy()[0]
    np.testing.assert_array_equal(blurred, cv2.blur(image, (3, 3)))


# ----------------------------------------------------------------------------- the whole mask


@pytest.mark.parametrize("arithmetic,ipp", ARITHMETICS)
@pytest.mark.parametrize("severity", WATER_SEVERITIES)
@pytest.mark.parametrize("height,width", SIZES + ((2, 2), (64, 5)))
def test_water_mask_equals_numpy_backend(arithmetic, ipp, severity, height, width):
    """Bit for bit (float32 bits) equal to water_spatter_mask, in OpenCV's either arithmetic."""
    seeds = range(2) if height * width > 10_000 else range(4)
    layers = [liquid_layer(severity, height, width, seed) for seed in seeds]
    with opencv_ipp(ipp):
        ours = P.water_spatter_masks(batch(*[liquid for liquid, _ in layers]),
                                     layers[0][1]).numpy()
        for (liquid, strength), mask in zip(layers, ours):
            reference = water_spatter_mask(liquid.astype(np.float64), strength)
            assert reference.dtype == mask.dtype == np.float32
            np.testing.assert_array_equal(mask.view(np.int32), reference.view(np.int32))


def test_dry_layer_gives_a_zero_mask():
    dry = torch.zeros(1, 20, 30)
    assert torch.equal(P.water_spatter_masks(dry, 0.6), torch.zeros(1, 20, 30))
    np.testing.assert_array_equal(water_spatter_mask(dry[0].numpy().astype(np.float64), 0.6), 0)


def test_batch_invariance():
    layers = batch(*[liquid_layer(severity, 61, 87, seed)[0]
                     for seed, severity in enumerate(WATER_SEVERITIES)])
    together = P.water_spatter_masks(layers, 0.6)
    for index in range(3):
        alone = P.water_spatter_masks(layers[index:index + 1], 0.6)
        assert torch.equal(together[index:index + 1], alone)


def test_spatter_bytes_unchanged_with_the_tensor_shading(monkeypatch):
    """corrupt_batch's spatter with each image's OpenCV shading replaced by the tensor path (as
    on a GPU) gives the same bytes at severities 1-3."""
    images = torch.from_numpy(np.random.RandomState(5).randint(0, 256, (3, 3, 70, 90), np.uint8))
    with_opencv = [C.corrupt_batch(images, "spatter", severity, seed=11)
                   for severity in WATER_SEVERITIES]

    def tensor_shading(layer: np.ndarray, strength: float) -> np.ndarray:
        as_float32 = torch.from_numpy(layer.astype(np.float32))  # exact: the layer was float32
        return P.water_spatter_masks(as_float32[None], strength)[0].numpy()

    monkeypatch.setattr(_torch_weather, "water_spatter_mask", tensor_shading)
    for severity, expected in zip(WATER_SEVERITIES, with_opencv):
        assert torch.equal(C.corrupt_batch(images, "spatter", severity, seed=11), expected)


# ----------------------------------------------------------------------------- devices


def test_runs_on_an_explicit_cpu_device():
    layers = batch(liquid_layer(2, 45, 67, 0)[0]).to(torch.device("cpu"))
    mask = P.water_spatter_masks(layers, 0.6)
    assert mask.device.type == "cpu" and mask.dtype == torch.float32
    assert mask.max().item() == pytest.approx(0.6)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="no CUDA device on this machine: the CUDA path is the same tensor code "
                           "and is compared with the CPU here when one is present")
def test_cuda_equals_cpu():
    layers = batch(*[liquid_layer(severity, 480, 640, severity)[0]
                     for severity in WATER_SEVERITIES])
    for severity in WATER_SEVERITIES:
        strength = SPATTER_PARAMS[severity - 1][4]
        assert torch.equal(P.water_spatter_masks(layers.cuda(), strength).cpu(),
                           P.water_spatter_masks(layers, strength))
    images = torch.randint(0, 256, (3, 3, 96, 128), dtype=torch.uint8)
    for severity in range(1, 6):
        on_gpu = C.corrupt_batch(images.cuda(), "spatter", severity, seed=3).cpu()
        assert torch.equal(on_gpu, C.corrupt_batch(images, "spatter", severity, seed=3))
