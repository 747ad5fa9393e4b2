"""The base of our data preprocessors that wrap a task's own one (PRIME in training, batched
corruption in testing): which registry builds the inner preprocessor, and attribute look-ups
that fall through to it, so code reading e.g. ``model.data_preprocessor.mean`` keeps working."""
from __future__ import annotations

import importlib
from typing import Any, Mapping, Sequence

from mmengine.model import BaseDataPreprocessor


class WrappingDataPreprocessor(BaseDataPreprocessor):
    """A data preprocessor holding the task's own one as the submodule ``preprocessor``.

    Subclasses set ``_registry_name`` to ``"mmdet"`` or ``"mmseg"`` (None: mmengine's registry).
    """

    _registry_name: str | None = None

    def _set_inner(self, preprocessor: Mapping | Any, owner: str) -> None:
        """``self.preprocessor``: ``preprocessor`` itself when it is a module, else built from
        its config dict by the framework's registry; ``ValueError`` (naming ``owner``) otherwise."""
        import torch

        if isinstance(preprocessor, torch.nn.Module):
            inner = preprocessor
        elif isinstance(preprocessor, Mapping) and "type" in preprocessor:
            inner = self._registry().build(dict(preprocessor))
        else:
            raise ValueError(f"{owner} needs preprocessor=dict(type=..., ...) (the task's own data "
                             f"preprocessor), got {preprocessor!r}")
        self.preprocessor = inner

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


def framework_variants(base: type) -> tuple[type, type]:
    """``base``'s mmdet and mmseg variants, each building its inner preprocessor from that
    framework's registry: ``<Name>DetDataPreprocessor`` and ``<Name>SegDataPreprocessor`` for
    ``<Name>DataPreprocessor``. Bind them to those names in ``base``'s module (pickling finds
    classes by module and name)."""
    variants = []
    for framework, kind in (("mmdet", "Det"), ("mmseg", "Seg")):
        name = base.__name__.replace("DataPreprocessor", f"{kind}DataPreprocessor")
        doc = (f":class:`{base.__name__}` building its inner preprocessor from {framework}'s "
               f"registry (registered in {framework}'s ``MODELS`` as ``{base.__name__}``).")
        variants.append(type(name, (base,), {"_registry_name": framework, "__doc__": doc,
                                             "__module__": base.__module__, "__qualname__": name}))
    return variants[0], variants[1]


def register_wrappers(name: str, variants: Mapping[str, type], transforms: Sequence[type] = ()) -> list[str]:
    """Register each framework's variant of a wrapper in that framework's ``MODELS`` under
    ``name`` (and the pipeline steps ``transforms`` in its ``TRANSFORMS``), for the frameworks
    installed; ``force=True``, so idempotent. Returns the frameworks registered into."""
    done = []
    for framework, cls in variants.items():
        try:
            registry = importlib.import_module(f"{framework}.registry")
        except ImportError:
            continue
        registry.MODELS.register_module(name=name, module=cls, force=True)
        for step in transforms:
            registry.TRANSFORMS.register_module(name=step.__name__, module=step, force=True)
        done.append(framework)
    return done
