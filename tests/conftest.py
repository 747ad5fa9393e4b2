"""Shared fixtures."""
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent


@pytest.fixture
def python_exe() -> str:
    """The interpreter running the tests (the project's virtual environment)."""
    return sys.executable


# ----------------------------------------------------------------------------- corruption library
# Real photographs from scikit-image (shipped with the package, no download), at the small sizes
# the corruption tests use to stay fast on CPU.


def _resized(image, height: int, width: int):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((width, height), Image.LANCZOS))


@pytest.fixture(scope="session")
def reference():
    """imagecorruptions 1.1.2, patched by the test-only shim to run on numpy 2 / skimage 0.26."""
    sys.path.insert(0, str(TESTS_DIR))
    from _imagecorruptions_compat import load_reference

    return load_reference()


@pytest.fixture(scope="session")
def astronaut_128x160():
    import skimage.data

    return _resized(skimage.data.astronaut(), 128, 160)


@pytest.fixture(scope="session")
def chelsea_128x160():
    import skimage.data

    return _resized(skimage.data.chelsea(), 128, 160)


@pytest.fixture(scope="session")
def coffee_224():
    import skimage.data

    return _resized(skimage.data.coffee(), 224, 224)


@pytest.fixture(scope="session")
def coffee_97x131():
    """An odd size: neither side even nor a power of two."""
    import skimage.data

    return _resized(skimage.data.coffee(), 97, 131)


@pytest.fixture(scope="session")
def camera_grey_96x128():
    """A grey (H, W) photograph."""
    import skimage.data

    return _resized(skimage.data.camera(), 96, 128)


@pytest.fixture(scope="session")
def astronaut_32():
    """The smallest accepted size."""
    import skimage.data

    return _resized(skimage.data.astronaut(), 32, 32)
