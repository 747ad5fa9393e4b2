"""The classification target: published checkpoints as torchvision state dicts.

The classification CLI (``robust-models-transfer/src/main.py``) fine-tunes torchvision networks,
and mmdet/mmseg's ``ResNet`` uses torchvision's key names too, so every ResNet layout is first
read into torchvision keys here, checked against the architecture key for key, then either
loaded (classification) or written for a framework (:mod:`.mmdet`, :mod:`.mmseg`). Swin-T is
renamed to torchvision's ``swin_t`` by :func:`.swin_keys.convert_swin_to_torchvision`.
"""
from __future__ import annotations

import functools
import os
from typing import Any

import torch

from .checks import CheckpointError, check_state_dict
from .files import load_checkpoint_file
from .formats import extract_state_dict, has_prefix
from .resnet_family import RESNET_ARCHS, build_torchvision_resnet, infer_resnet_spec
from .swin_keys import convert_swin_to_torchvision, swin_relative_position_index

#: Architectures whose key layout the converters know: the ResNet family of
#: :mod:`.resnet_family` (torchvision's and timm's names) and Swin-T.
BACKBONE_ARCHS = (*RESNET_ARCHS, "swin_t")
#: ``arch=AUTO`` reads the ResNet architecture off the checkpoint's keys and shapes.
AUTO = "auto"

#: Names of the ImageNet classifier parameters, dropped unless ``include_fc=True``.
HEAD_PREFIXES = ("fc.", "head.")


def build_backbone(arch: str, num_classes: int = 1000) -> torch.nn.Module:
    """A randomly initialised torchvision network of ``arch`` (no weights are downloaded).

    ``wide_resnet50_4`` does not exist in torchvision: it is built as the robustness library
    does, a ResNet-50 with ``width_per_group=64*4``. timm's ResNet-D names (``resnet50d``) are
    torchvision ResNets with timm's deep stem and shortcuts (see :mod:`.resnet_family`).
    """
    if arch not in BACKBONE_ARCHS:
        raise CheckpointError(f"unknown backbone arch {arch!r}; allowed: {', '.join(BACKBONE_ARCHS)}")
    if arch in RESNET_ARCHS:
        return build_torchvision_resnet(RESNET_ARCHS[arch], num_classes)
    import torchvision.models as tvm

    return getattr(tvm, arch)(weights=None, num_classes=num_classes)


@functools.lru_cache(maxsize=None)
def _expected_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    # Built on the meta device: shapes without allocating or initialising 25M+ parameters.
    with torch.device("meta"):
        model = build_backbone(arch)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def expected_keys(arch_or_model: str | torch.nn.Module, *, include_fc: bool = False
                  ) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the state dict a backbone expects (an arch name or a built model)."""
    if isinstance(arch_or_model, torch.nn.Module):
        shapes = {k: tuple(v.shape) for k, v in arch_or_model.state_dict().items()}
    else:
        shapes = dict(_expected_shapes(arch_or_model))
    if not include_fc:
        shapes = {k: s for k, s in shapes.items() if not k.startswith(HEAD_PREFIXES)}
    return shapes


def to_torchvision_state_dict(obj: Any, fmt: str | None = None, *,
                              arch: str | torch.nn.Module = "resnet50", include_fc: bool = False,
                              what: str = "checkpoint") -> tuple[dict[str, torch.Tensor], str]:
    """Convert a loaded checkpoint object to a torchvision-keyed state dict, validated against
    ``arch`` (a name of :data:`BACKBONE_ARCHS`, a built model, or :data:`AUTO` to read the
    ResNet architecture off the keys). Returns ``(state_dict, format)``.

    The ImageNet head (``fc.*`` / ``head.*``) is dropped unless ``include_fc``; then it must be
    present in the checkpoint.
    """
    state_dict, fmt = extract_state_dict(obj, fmt)
    if fmt == "swin" or has_prefix(state_dict, "patch_embed."):
        state_dict = convert_swin_to_torchvision(state_dict)
        arch = "swin_t" if arch == AUTO else arch
    elif arch == AUTO:
        arch = _arch_of(infer_resnet_spec(state_dict, what))
    if not include_fc:
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith(HEAD_PREFIXES)}
    # Some releases carry BatchNorm's num_batches_tracked, some do not: it is a counter used
    # only with momentum=None, so fill it in rather than rejecting the file.
    expected = expected_keys(arch, include_fc=include_fc)
    for key, shape in expected.items():
        if key.endswith("num_batches_tracked") and key not in state_dict:
            state_dict[key] = torch.tensor(0, dtype=torch.long)
        elif key.endswith("relative_position_index") and key not in state_dict:
            # a constant of the window size; files re-saved by other tools sometimes omit it
            state_dict[key] = swin_relative_position_index(round(shape[0] ** 0.25))
    label = arch if isinstance(arch, str) else type(arch).__name__
    check_state_dict(state_dict, expected, f"{what} ({fmt} layout) for {label}")
    return state_dict, fmt


def _arch_of(spec) -> str | torch.nn.Module:
    """A named architecture where ``spec`` has a name, else the network built on the meta device."""
    if spec.name in RESNET_ARCHS:
        return spec.name
    with torch.device("meta"):
        return build_torchvision_resnet(spec)


def load_imagenet_backbone(path: str | os.PathLike, arch: str | torch.nn.Module = "resnet50", *,
                           fmt: str | None = None, include_fc: bool = False,
                           weights_only: bool = True) -> tuple[dict[str, torch.Tensor], str]:
    """Read a published ImageNet checkpoint and return ``(torchvision_state_dict, format)``.

    ``arch`` is what the weights must fit (see :func:`to_torchvision_state_dict`); ``fmt``
    forces a layout instead of detecting it.
    """
    obj = load_checkpoint_file(path, weights_only=weights_only)
    return to_torchvision_state_dict(obj, fmt, arch=arch, include_fc=include_fc, what=str(path))


def export_torchvision(src: str | os.PathLike, dst: str | os.PathLike, *, arch: str = AUTO,
                       fmt: str | None = None, weights_only: bool = True) -> str:
    """Write the classification file of a checkpoint: a bare torchvision state dict *with* the
    ImageNet head, checked key for key, which ``torchvision``'s (or our) ``arch`` network loads
    with ``load_state_dict(strict=True)`` and the classification CLI reads as ``--model-path``
    (layout ``torchvision``). Returns the architecture. Written atomically."""
    from .files import save_atomically

    obj = load_checkpoint_file(src, weights_only=weights_only)
    state_dict, _ = to_torchvision_state_dict(obj, fmt, arch=arch, include_fc=True, what=str(src))
    if arch == AUTO:
        arch = "swin_t" if "head.weight" in state_dict else infer_resnet_spec(state_dict, str(src)).name
    save_atomically(state_dict, dst)
    return arch
