"""Build of the one native module (the rest is pyproject.toml): Philox words and the Poisson
table inversion of the torch corruption backend on the CPU. Optional: where no C compiler
exists the install still succeeds and the backend uses its tensor-op form (the same bits,
slower; ``python -m robust_transfer.environment check`` says which one is in use)."""
from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "robust_transfer.corruptions._philox_native",
    ["robust_transfer/corruptions/_philox_native.c"],
    extra_compile_args=["-O3", "-std=c99"],
    optional=True,
)])
