"""Robustness Transfer Benchmark: does robustness on ImageNet transfer to downstream tasks?

The front door of the corruption library is re-exported here::

    from robust_transfer import corrupt, get_corruption_names
    corrupted = corrupt(image, "fog", severity=3, seed=0, key="000001.jpg")
"""
from .corruptions import corrupt, get_corruption_names

__version__ = "0.2.0"
__all__ = ["corrupt", "get_corruption_names", "__version__"]
