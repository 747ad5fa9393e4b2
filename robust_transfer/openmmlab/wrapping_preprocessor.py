"""The base of our data preprocessors that wrap a task's own one (PRIME in training, batched
corruption in testing): which registry builds the inner preprocessor, and attribute look-ups
that fall through to it, so code reading e.g. ``model.data_preprocessor.mean`` keeps working."""
from __future__ import annotations

from typing import Any

from mmengine.model import BaseDataPreprocessor


class WrappingDataPreprocessor(BaseDataPreprocessor):
    """A data preprocessor holding the task's own one as the submodule ``preprocessor``.

    Subclasses set ``_registry_name`` to ``"mmdet"`` or ``"mmseg"`` (None: mmengine's registry).
    """

    _registry_name: str | None = None

    @classmethod
    def _registry(cls):
        if cls._registry_name == "mmdet":
            from mmdet.registry import MODELS
        elif cls._registry_name == "mmseg":
            from mmseg.registry import MODELS
        else:
            from mmengine.registry import MODELS
        return MODELS

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            inner = self.__dict__.get("_modules", {}).get("preprocessor")
            if inner is None or name.startswith("__"):
                raise
            return getattr(inner, name)
