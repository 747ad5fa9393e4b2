"""Data set readers (real on-disk formats, no downloads) and synthetic stand-ins for tests.

* :mod:`robust_transfer.datasets.cifar` -- CIFAR-10/100 python batches, CIFAR-10-C/100-C .npy.
* :mod:`robust_transfer.datasets.synthetic` -- tiny deterministic data sets written in those
  same formats (``write_synthetic_cifar10``, ``write_synthetic_cifar10c``, ...).
"""
from .cifar import (DatasetNotFoundError, ImageArrays, cifar_c_corruptions, find_cifar_folder,
                    get_layout, load_cifar, load_cifar_c)

__all__ = ["DatasetNotFoundError", "ImageArrays", "cifar_c_corruptions", "find_cifar_folder",
           "get_layout", "load_cifar", "load_cifar_c"]
