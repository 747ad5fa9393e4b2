"""The test-only shim that runs imagecorruptions 1.1.2 on numpy 2 / scikit-image 0.26."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

import _imagecorruptions_compat as compat


def test_reference_runs_the_patched_corruptions(reference, astronaut_32):
    for name in ("glass_blur", "gaussian_blur", "fog", "frost", "elastic_transform"):
        np.random.seed(0)
        out = reference.corrupt(astronaut_32, 3, name)
        assert out.shape == (32, 32, 3) and out.dtype == np.uint8


def test_patches_stay_inside_the_reference_module(reference):
    module = sys.modules["imagecorruptions.corruptions"]
    assert module.np.float_ is np.float64
    assert not hasattr(np, "float_")  # numpy itself is untouched
    assert module.np.random is np.random  # the reference still draws from the global state
    assert module.gaussian.__wrapped__ is importlib.import_module("skimage.filters").gaussian


def test_load_reference_is_idempotent(reference):
    module = sys.modules["imagecorruptions.corruptions"]
    wrapper = module.gaussian
    assert compat.load_reference() is reference
    assert module.gaussian is wrapper  # not wrapped twice


def test_multichannel_maps_to_channel_axis(reference):
    image = np.random.RandomState(0).rand(34, 36, 3)
    module = sys.modules["imagecorruptions.corruptions"]
    from skimage.filters import gaussian

    np.testing.assert_array_equal(module.gaussian(image, sigma=2, multichannel=True),
                                  gaussian(image, sigma=2, channel_axis=-1))


def test_pkg_resources_stand_in_when_setuptools_lacks_it(monkeypatch, reference):
    monkeypatch.setitem(sys.modules, "pkg_resources", None)  # makes `import pkg_resources` fail
    compat._install_pkg_resources_stand_in()
    stand_in = sys.modules["pkg_resources"]
    assert stand_in is not None and "stand-in" in stand_in.__doc__
    path = Path(stand_in.resource_filename("imagecorruptions.corruptions", "./frost/frost1.png"))
    assert path.is_file() and path.parent.name == "frost"
