"""The published checkpoint layouts ("formats"), each a reader in one registry.

Every backbone of the study ships in its own container and key naming. A reader names its
layout, says whether a loaded checkpoint looks like it (``matches``), and unwraps the network
weights (``unwrap``). :func:`detect_checkpoint_format` asks the readers in registration order
-- the most specific first, the catch-all ``torchvision`` last -- and :data:`SUPPORTED_FORMATS`
is derived from the registry, so a layout is added in one place: :func:`register_format`.

=============== ========================================================================
``robustness``  robustness library / robust-models-transfer (Salman et al. L2 ResNet-50s):
                ``{"model": sd}`` (older files: ``{"state_dict": sd}``) with keys
                ``module.model.*`` (the network), ``module.attacker.model.*`` (the same
                weights again) and ``module.normalizer.*`` / ``module.attacker.normalize.*``
                (ImageNet mean/std buffers). Only ``module.model.*`` is kept (``model.*``
                for models saved without DataParallel).
``swin``        microsoft/Swin-Transformer (``swin_tiny_patch4_window7_224.pth``):
                ``{"model": sd}`` with ``patch_embed.*``, ``layers.{i}.blocks.{j}.*``,
                ``layers.{i}.downsample.*``, ``norm.*``, ``head.*`` (see :mod:`.swin_keys`).
``ant``         bethgelab/game-of-noise (ANT): ``{"model_state_dict": sd}``, keys with a
                ``module.`` prefix.
``deepaugment`` hendrycks/imagenet-r (DeepAugment+AugMix, ``.pth.tar``): the PyTorch
                ImageNet-example container ``{"state_dict": sd, "epoch", ...}`` with
                ``module.`` prefixes.
``prime``       amodas/PRIME-augmentations (ResNet-50 on ImageNet): ``{"state_dict": sd}``
                with plain torchvision keys; a PyTorch-Lightning container (keys ``model.*``,
                or ``model.model.*`` plus the augmentation's ``model.aug.*`` for the
                ``AugModel`` wrapper) is unwrapped as well.
``torchvision`` a bare torchvision state dict (``conv1.weight`` ...), e.g. the regular
                ResNet-50 of ``torchvision://resnet50``; a ``module.`` (DataParallel)
                prefix is tolerated.
=============== ========================================================================

Containers overlap (a ``{"state_dict": sd}`` file without ``module.`` is read as ``prime``, one
with ``module.`` as ``deepaugment``), but the names only label *layouts*: whichever label a
file gets, the extracted weights are the same. Pass ``fmt=`` to force a layout.

torch is imported only inside the functions, so that command lines can offer the format names
(``--model-format``) without paying for it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from .checks import CheckpointError, preview_keys

#: Where containers keep the network's state dict, in the order they are looked up.
CONTAINER_KEYS = ("model", "state_dict", "model_state_dict")
_ROBUSTNESS_PREFIX = "module.model."
# robustness-library models saved without DataParallel: model.*, attacker.model.*, normalizer.*
_ROBUSTNESS_BARE_MARKER, _ROBUSTNESS_BARE_PREFIX = "attacker.model.", "model."
_SWIN_MARKER = "patch_embed.proj.weight"

#: ``matches(container_key, keys)``: container_key is None for a bare state dict.
Matcher = Callable[[str | None, list[str]], bool]


@dataclass(frozen=True)
class FormatReader:
    """One published layout: its name, a one-line description, how to recognise it and how
    to unwrap the network weights from its state dict."""

    name: str
    description: str
    matches: Matcher
    unwrap: Callable[[dict], dict]


#: Layout name -> reader, in detection order.
READERS: dict[str, FormatReader] = {}
#: Layout name -> one-line description (for error messages and ``--help``); kept in step
#: with :data:`READERS` by :func:`register_format`.
SUPPORTED_FORMATS: dict[str, str] = {}


def register_format(name: str, description: str, matches: Matcher):
    """Decorator: register ``unwrap(state_dict) -> state_dict`` as the reader of ``name``.

    Readers are tried in registration order, so register specific layouts before broad ones.
    """
    def decorate(unwrap: Callable[[dict], dict]) -> Callable[[dict], dict]:
        if name in READERS:
            raise ValueError(f"checkpoint format {name!r} is already registered")
        READERS[name] = FormatReader(name, description, matches, unwrap)
        SUPPORTED_FORMATS[name] = description
        return unwrap
    return decorate


# ----------------------------------------------------------------------------- key helpers


def has_prefix(keys: Iterable[str], prefix: str) -> bool:
    """Whether any key starts with ``prefix``."""
    return any(k.startswith(prefix) for k in keys)


def _all_have_prefix(keys: Iterable[str], prefix: str) -> bool:
    keys = list(keys)
    return bool(keys) and all(k.startswith(prefix) for k in keys)


def _strip(state_dict: Mapping, prefix: str) -> dict:
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state_dict.items()}


def _strip_dataparallel(state_dict: dict) -> dict:
    return _strip(state_dict, "module.") if _all_have_prefix(state_dict, "module.") else state_dict


def _is_robustness(keys: list[str]) -> bool:
    return has_prefix(keys, _ROBUSTNESS_PREFIX) or has_prefix(keys, _ROBUSTNESS_BARE_MARKER)


# ----------------------------------------------------------------------------- the readers


@register_format("robustness", "robustness-library .ckpt ({'model'|'state_dict': ...}, module.model.* keys)",
                 matches=lambda container, keys: _is_robustness(keys))
def _unwrap_robustness(state_dict: dict) -> dict:
    prefix = _ROBUSTNESS_PREFIX if has_prefix(state_dict, _ROBUSTNESS_PREFIX) else _ROBUSTNESS_BARE_PREFIX
    if not has_prefix(state_dict, prefix):
        raise CheckpointError("not a robustness-library checkpoint: no 'module.model.*' keys "
                              f"(keys: {preview_keys(state_dict)})")
    # module.attacker.model.* is the very same network (shared modules) and the
    # normalizers are ImageNet mean/std constants: keep only module.model.*
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


@register_format("swin", "microsoft Swin-Transformer ({'model': ...}, patch_embed/layers.i.blocks.j keys)",
                 matches=lambda container, keys: any(k.endswith(_SWIN_MARKER) for k in keys))
def _unwrap_swin(state_dict: dict) -> dict:
    return _strip_dataparallel(state_dict)


@register_format("ant", "game-of-noise ANT ({'model_state_dict': ...}, module.* keys)",
                 matches=lambda container, keys: container == "model_state_dict")
def _unwrap_ant(state_dict: dict) -> dict:
    return _strip_dataparallel(state_dict)


@register_format("deepaugment", "DeepAugment+AugMix .pth.tar ({'state_dict': ...}, module.* keys)",
                 matches=lambda container, keys: container == "state_dict"
                 and _all_have_prefix(keys, "module."))
def _unwrap_deepaugment(state_dict: dict) -> dict:
    return _strip_dataparallel(state_dict)


@register_format("prime", "PRIME ({'state_dict': ...}, plain or PyTorch-Lightning model.* keys)",
                 matches=lambda container, keys: container == "state_dict")
def _unwrap_prime(state_dict: dict) -> dict:
    # PyTorch-Lightning containers: Classifier(model=net) -> model.*;
    # AugClassifier(AugModel(model=net, aug=prime)) -> model.model.* and model.aug.*
    if has_prefix(state_dict, "model.model."):
        state_dict = {k[len("model.model."):]: v for k, v in state_dict.items()
                      if k.startswith("model.model.")}
    elif _all_have_prefix(state_dict, "model."):
        state_dict = _strip(state_dict, "model.")
    return _strip_dataparallel(state_dict)


@register_format("torchvision", "bare torchvision state dict (conv1.weight, layer1.0..., fc.*)",
                 matches=lambda container, keys: True)  # the catch-all, registered last
def _unwrap_torchvision(state_dict: dict) -> dict:
    return _strip_dataparallel(state_dict)


# ----------------------------------------------------------------------------- front door


def _is_state_dict(obj: Any) -> bool:
    import torch

    return (isinstance(obj, Mapping) and len(obj) > 0
            and all(isinstance(k, str) for k in obj)
            and all(isinstance(v, torch.Tensor) for v in obj.values()))


def _container_key(obj: Mapping) -> str | None:
    """The key of ``obj`` that holds the network's state dict, if ``obj`` is a container."""
    for key in CONTAINER_KEYS:
        if key in obj and _is_state_dict(obj[key]):
            return key
    return None


def _locate_state_dict(obj: Any) -> tuple[str | None, Mapping] | None:
    """``(container key or None, state dict)`` of a loaded checkpoint, None if it holds none."""
    if _is_state_dict(obj):
        return None, obj
    if isinstance(obj, Mapping) and _container_key(obj):
        key = _container_key(obj)
        return key, obj[key]
    return None


def detect_checkpoint_format(obj: Any) -> str:
    """Name the layout of a loaded checkpoint object (a key of :data:`SUPPORTED_FORMATS`).

    Raises :class:`CheckpointError` describing what was found when nothing matches.
    """
    located = _locate_state_dict(obj)
    if located is None and not isinstance(obj, Mapping):
        raise CheckpointError(f"not a checkpoint: expected a dict, got {type(obj).__name__}")
    if located is None:
        raise CheckpointError(
            "unknown checkpoint layout: no state dict at the top level nor under "
            f"{', '.join(map(repr, CONTAINER_KEYS))} (top-level keys: {preview_keys(obj)})")
    container, state_dict = located
    keys = list(state_dict)
    return next(reader.name for reader in READERS.values() if reader.matches(container, keys))


def extract_state_dict(obj: Any, fmt: str | None = None) -> tuple[dict, str]:
    """Unwrap the network weights of a loaded checkpoint and strip its wrapper prefixes.

    Returns ``(state_dict, format)``. Keys keep the source's naming apart from the wrappers
    (``module.``, ``module.model.``, Lightning ``model.``): torchvision names for the ResNet
    layouts, microsoft names for ``swin``. Auxiliary entries (the robustness library's attacker
    copy and normalizer, PRIME's augmentation module) are dropped.
    """
    fmt = fmt or detect_checkpoint_format(obj)
    if fmt not in READERS:
        raise CheckpointError(f"unknown checkpoint format {fmt!r}; allowed: {', '.join(READERS)}")
    located = _locate_state_dict(obj)
    if located is None:
        raise CheckpointError(f"a {fmt!r} checkpoint must be a state dict or a dict holding one "
                              f"under {', '.join(map(repr, CONTAINER_KEYS))}")
    return READERS[fmt].unwrap(dict(located[1])), fmt
