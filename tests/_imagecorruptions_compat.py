"""TEST-ONLY shim: make imagecorruptions 1.1.2 importable and correct on today's stack.

imagecorruptions 1.1.2 (the reference our corruption library is tested against) was written for
numpy 1.x, scikit-image < 0.19 and setuptools with ``pkg_resources``. On numpy 2 /
scikit-image 0.26 it breaks in three places; each fix below is scoped as narrowly as possible:

(a) ``from pkg_resources import resource_filename`` -- setuptools >= 81 drops ``pkg_resources``.
    If it is missing we register a tiny stand-in module offering ``resource_filename`` through
    ``importlib.resources``. If it exists we only silence its deprecation warning on import.
(b) ``np.float_`` (removed in numpy 2, used by ``plasma_fractal`` for fog) -- we give the
    reference module its own ``np``: a proxy of numpy that adds ``float_ = float64``. Numpy
    itself is not modified.
(c) ``skimage.filters.gaussian(..., multichannel=True)`` (removed in scikit-image 0.19) -- the
    reference module's ``gaussian`` name is replaced by a wrapper that maps ``multichannel=True``
    to ``channel_axis=-1`` (identical semantics: do not blur across the last axis).
(d) ``scipy.ndimage.interpolation`` is deprecated (removal planned for SciPy 2.0): if the import
    fails we register it as an alias of ``scipy.ndimage``.

Nothing here is used by the library itself; only tests and the benchmark import it.
"""
from __future__ import annotations

import importlib
import importlib.resources
import sys
import types
import warnings

import numpy as np

_REFERENCE_MODULE = "imagecorruptions.corruptions"


def _install_pkg_resources_stand_in() -> None:
    """(a) Provide ``pkg_resources.resource_filename`` when setuptools no longer ships it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pkg_resources  # noqa: F401
        return
    except ImportError:
        pass

    def resource_filename(package_or_requirement: str, resource_name: str) -> str:
        package = package_or_requirement.rpartition(".")[0] or package_or_requirement
        # "imagecorruptions.corruptions" asks for './frost/x.png' relative to its package.
        path = importlib.resources.files(package).joinpath(resource_name.lstrip("./"))
        return str(path)

    stand_in = types.ModuleType("pkg_resources")
    stand_in.resource_filename = resource_filename
    stand_in.__doc__ = "Test-only stand-in for setuptools' removed pkg_resources (resource_filename only)."
    sys.modules["pkg_resources"] = stand_in


def _install_scipy_interpolation_alias() -> None:
    """(d) Keep ``from scipy.ndimage.interpolation import map_coordinates`` working."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            importlib.import_module("scipy.ndimage.interpolation")
    except ImportError:
        import scipy.ndimage

        sys.modules["scipy.ndimage.interpolation"] = scipy.ndimage


class _NumpyWithFloatAlias(types.ModuleType):
    """(b) numpy as seen by the reference module, plus the ``float_`` alias numpy 2 removed."""

    float_ = np.float64

    def __getattr__(self, name: str):
        return getattr(np, name)


def _gaussian_accepting_multichannel(gaussian):
    """(c) Wrap skimage's ``gaussian`` so the old ``multichannel=True`` keyword still works."""

    def gaussian_compat(image, *args, multichannel: bool | None = None, **kwargs):
        if multichannel:
            kwargs.setdefault("channel_axis", -1)
        return gaussian(image, *args, **kwargs)

    gaussian_compat.__wrapped__ = gaussian
    return gaussian_compat


def load_reference():
    """Import ``imagecorruptions`` with the shims above applied; return the patched package.

    Idempotent: patching twice does not stack wrappers. The returned package exposes the
    reference ``corrupt(image, severity, corruption_name)`` and ``get_corruption_names``; the
    per-corruption functions live in ``package.corruptions``.
    """
    _install_pkg_resources_stand_in()
    _install_scipy_interpolation_alias()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        package = importlib.import_module("imagecorruptions")
    module = sys.modules[_REFERENCE_MODULE]
    if not isinstance(module.np, _NumpyWithFloatAlias):
        module.np = _NumpyWithFloatAlias("numpy")
    if not hasattr(module.gaussian, "__wrapped__"):
        module.gaussian = _gaussian_accepting_multichannel(module.gaussian)
    return package
