"""Converters from the published ImageNet checkpoints to the key layouts our tasks load.

Every backbone of the study ships in its own container and key naming. This module reads each
of them (``torch.load(weights_only=True)`` unless told otherwise) and returns one plain state
dict with **torchvision key names** -- the layout torchvision's ``resnet50``/``swin_t`` and
mmdet/mmseg's ``ResNet`` backbone (whose keys equal torchvision's) load directly.

Supported source layouts (``format`` names, as :func:`detect_checkpoint_format` returns them):

=============== ========================================================================
``robustness``  robustness library / robust-models-transfer (Salman et al. L2 ResNet-50s):
                ``{"model": sd}`` (older files: ``{"state_dict": sd}``) with keys
                ``module.model.*`` (the network), ``module.attacker.model.*`` (the same
                weights again) and ``module.normalizer.*`` / ``module.attacker.normalize.*``
                (ImageNet mean/std buffers). Only ``module.model.*`` is kept (``model.*``
                for models saved without DataParallel).
``torchvision`` a bare torchvision state dict (``conv1.weight`` ...), e.g. the regular
                ResNet-50 of ``torchvision://resnet50``; a ``module.`` (DataParallel)
                prefix is tolerated.
``ant``         bethgelab/game-of-noise (ANT): ``{"model_state_dict": sd}``, keys with a
                ``module.`` prefix.
``deepaugment`` hendrycks/imagenet-r (DeepAugment+AugMix, ``.pth.tar``): the PyTorch
                ImageNet-example container ``{"state_dict": sd, "epoch", ...}`` with
                ``module.`` prefixes.
``prime``       amodas/PRIME-augmentations (ResNet-50 on ImageNet): ``{"state_dict": sd}``
                with plain torchvision keys; a PyTorch-Lightning container (keys ``model.*``,
                or ``model.model.*`` plus the augmentation's ``model.aug.*`` for the
                ``AugModel`` wrapper) is unwrapped as well.
``swin``        microsoft/Swin-Transformer (``swin_tiny_patch4_window7_224.pth``):
                ``{"model": sd}`` with ``patch_embed.*``, ``layers.{i}.blocks.{j}.*``,
                ``layers.{i}.downsample.*``, ``norm.*``, ``head.*``; converted to
                torchvision ``swin_t`` names by :func:`convert_swin_to_torchvision`.
=============== ========================================================================

Containers overlap (a ``{"state_dict": sd}`` file without ``module.`` is read as ``prime``, one
with ``module.`` as ``deepaugment``), but the names only label *layouts*: whichever label a
file gets, the extracted weights are the same. Pass ``fmt=`` to force a layout.

For mmdet/mmseg: :func:`to_mmdet_resnet` (keys are torchvision's; only ``fc.*`` is dropped)
and :func:`save_mmdet_resnet` (writes ``{"state_dict": ...}``). Swin-T: mmdet 3.x's
``SwinTransformer`` converts the official keys itself (``convert_weights=True``); mmseg 1.x's does
not and loads with ``strict=False``, so an unconverted file silently leaves the backbone random:
convert it with ``mmsegmentation/tools/model_converters/imagenet2mmseg.py --backbone swin_t``.
"""
from __future__ import annotations

import functools
import os
import pickle
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

#: Layout name -> one-line description (for error messages and ``--help``).
SUPPORTED_FORMATS: dict[str, str] = {
    "robustness": "robustness-library .ckpt ({'model'|'state_dict': ...}, module.model.* keys)",
    "torchvision": "bare torchvision state dict (conv1.weight, layer1.0..., fc.*)",
    "ant": "game-of-noise ANT ({'model_state_dict': ...}, module.* keys)",
    "deepaugment": "DeepAugment+AugMix .pth.tar ({'state_dict': ...}, module.* keys)",
    "prime": "PRIME ({'state_dict': ...}, plain or PyTorch-Lightning model.* keys)",
    "swin": "microsoft Swin-Transformer ({'model': ...}, patch_embed/layers.i.blocks.j keys)",
}

#: Torchvision architectures whose key layout the converters know.
BACKBONE_ARCHS = ("resnet18", "resnet50", "wide_resnet50_2", "wide_resnet50_4", "swin_t")

#: Names of the ImageNet classifier parameters, dropped unless ``include_fc=True``.
_HEAD_PREFIXES = ("fc.", "head.")

_ROBUSTNESS_PREFIX = "module.model."
# robustness-library models saved without DataParallel: model.*, attacker.model.*, normalizer.*
_ROBUSTNESS_BARE_MARKER, _ROBUSTNESS_BARE_PREFIX = "attacker.model.", "model."
_SWIN_MARKERS = ("patch_embed.proj.weight",)
_CONTAINER_KEYS = ("model", "state_dict", "model_state_dict")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model: unknown layout, missing or
    unexpected keys, wrong shapes."""


# ----------------------------------------------------------------------------- reading


def load_checkpoint_file(path: str | os.PathLike, *, weights_only: bool = True) -> Any:
    """``torch.load`` a checkpoint on the CPU, with a clear error for missing/unsafe files.

    ``weights_only=True`` (the default) refuses pickled code objects; a file that needs them
    fails with a message explaining how to opt out for a *trusted* file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if not weights_only or not found:
            raise CheckpointError(f"{path}: not a readable torch checkpoint "
                                  f"({_last_line(error)})") from None
        raise CheckpointError(
            f"{path}: cannot be loaded with weights_only=True: it holds a pickled "
            f"{found.group(1)} object. If you trust this file, load it with weights_only=False "
            "(classification CLI: --unsafe-load)") from None
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({_last_line(error)})") from None


def _last_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    informative = [line for line in lines if not line.startswith("Check the documentation")]
    return (informative or lines or [type(error).__name__])[-1]


def _is_state_dict(obj: Any) -> bool:
    return (isinstance(obj, Mapping) and len(obj) > 0
            and all(isinstance(k, str) for k in obj)
            and all(isinstance(v, torch.Tensor) for v in obj.values()))


def _container_key(obj: Mapping) -> str | None:
    """The key of ``obj`` that holds the network's state dict, if ``obj`` is a container."""
    for key in _CONTAINER_KEYS:
        if key in obj and _is_state_dict(obj[key]):
            return key
    return None


def _has_prefix(keys: Iterable[str], prefix: str) -> bool:
    return any(k.startswith(prefix) for k in keys)


def _all_have_prefix(keys: Iterable[str], prefix: str) -> bool:
    keys = list(keys)
    return bool(keys) and all(k.startswith(prefix) for k in keys)


def _is_robustness(keys: Iterable[str]) -> bool:
    keys = list(keys)
    return _has_prefix(keys, _ROBUSTNESS_PREFIX) or _has_prefix(keys, _ROBUSTNESS_BARE_MARKER)


def detect_checkpoint_format(obj: Any) -> str:
    """Name the layout of a loaded checkpoint object (a key of :data:`SUPPORTED_FORMATS`).

    Raises :class:`CheckpointError` describing what was found when nothing matches.
    """
    if _is_state_dict(obj):
        keys = list(obj)
        if _is_robustness(keys):
            return "robustness"
        if any(k.endswith(m) for k in keys for m in _SWIN_MARKERS):
            return "swin"
        return "torchvision"
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"not a checkpoint: expected a dict, got {type(obj).__name__}")
    key = _container_key(obj)
    if key is None:
        raise CheckpointError(
            "unknown checkpoint layout: no state dict at the top level nor under "
            f"{', '.join(map(repr, _CONTAINER_KEYS))} (top-level keys: {_preview(obj)})")
    keys = list(obj[key])
    if _is_robustness(keys):
        return "robustness"
    if any(k.endswith(m) for k in keys for m in _SWIN_MARKERS):
        return "swin"
    if key == "model_state_dict":
        return "ant"
    if key == "state_dict" and _all_have_prefix(keys, "module."):
        return "deepaugment"
    if key == "state_dict":
        return "prime"
    return "torchvision"  # {"model": plain torchvision keys}


def _preview(keys: Iterable, limit: int = 5) -> str:
    keys = sorted(map(str, keys))
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "") if keys else "none"


def _strip(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state_dict.items()}


def extract_state_dict(obj: Any, fmt: str | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """Unwrap the network weights of a loaded checkpoint and strip its wrapper prefixes.

    Returns ``(state_dict, format)``. Keys keep the source's naming apart from the wrappers
    (``module.``, ``module.model.``, Lightning ``model.``): torchvision names for the ResNet
    layouts, microsoft names for ``swin``. Auxiliary entries (the robustness library's attacker
    copy and normalizer, PRIME's augmentation module) are dropped.
    """
    fmt = fmt or detect_checkpoint_format(obj)
    if fmt not in SUPPORTED_FORMATS:
        raise CheckpointError(f"unknown checkpoint format {fmt!r}; allowed: {', '.join(SUPPORTED_FORMATS)}")
    if _is_state_dict(obj):
        state_dict = dict(obj)
    elif isinstance(obj, Mapping) and _container_key(obj):
        state_dict = dict(obj[_container_key(obj)])
    else:
        raise CheckpointError(f"a {fmt!r} checkpoint must be a state dict or a dict holding one "
                              f"under {', '.join(map(repr, _CONTAINER_KEYS))}")

    if fmt == "robustness":
        prefix = _ROBUSTNESS_PREFIX if _has_prefix(state_dict, _ROBUSTNESS_PREFIX) else _ROBUSTNESS_BARE_PREFIX
        if not _has_prefix(state_dict, prefix):
            raise CheckpointError("not a robustness-library checkpoint: no 'module.model.*' keys "
                                  f"(keys: {_preview(state_dict)})")
        # module.attacker.model.* is the very same network (shared modules) and the
        # normalizers are ImageNet mean/std constants: keep only module.model.*
        return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}, fmt
    if fmt == "prime":
        # PyTorch-Lightning containers: Classifier(model=net) -> model.*;
        # AugClassifier(AugModel(model=net, aug=prime)) -> model.model.* and model.aug.*
        if _has_prefix(state_dict, "model.model."):
            state_dict = {k[len("model.model."):]: v for k, v in state_dict.items()
                          if k.startswith("model.model.")}
        elif _all_have_prefix(state_dict, "model."):
            state_dict = _strip(state_dict, "model.")
    if _all_have_prefix(state_dict, "module."):
        state_dict = _strip(state_dict, "module.")
    return state_dict, fmt


# ----------------------------------------------------------------------------- Swin-T


def convert_swin_to_torchvision(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename microsoft Swin-Transformer keys to torchvision ``SwinTransformer`` keys.

    Microsoft nests the patch merging inside the stage it follows (``layers.{i}.downsample``);
    torchvision lists stages and mergings flat in ``features``: patch embedding
    ``features.0``, stage ``i`` blocks ``features.{2i+1}.{j}``, merging after stage ``i``
    ``features.{2i+2}``. Both concatenate the 2x2 neighbours in the same order
    (x[0::2,0::2], x[1::2,0::2], x[0::2,1::2], x[1::2,1::2]) and apply LayerNorm before the
    reduction, so weights are copied unchanged. ``relative_position_index`` (the same constant
    in both, 2-D there, flattened here) is flattened; the shifted blocks' ``attn_mask`` buffers
    are dropped (torchvision builds masks on the fly).
    """
    converted: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        parts = key.split(".")
        if key.endswith("attn_mask"):
            continue
        if parts[0] == "patch_embed":
            sub = {"proj": "0", "norm": "2"}.get(parts[1])
            if sub is None:
                unknown.append(key)
                continue
            converted[".".join(["features.0", sub, *parts[2:]])] = value
        elif parts[0] == "layers" and len(parts) > 3 and parts[2] == "blocks":
            stage, block, rest = int(parts[1]), parts[3], parts[4:]
            name = ".".join(rest)
            name = name.replace("mlp.fc1.", "mlp.0.").replace("mlp.fc2.", "mlp.3.")
            if name == "attn.relative_position_index":
                value = value.flatten()
            converted[f"features.{2 * stage + 1}.{block}.{name}"] = value
        elif parts[0] == "layers" and len(parts) > 2 and parts[2] == "downsample":
            stage = int(parts[1])
            converted[".".join([f"features.{2 * stage + 2}", *parts[3:]])] = value
        elif parts[0] in ("norm", "head"):
            converted[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(f"unexpected keys in the Swin checkpoint: {_preview(unknown)}")
    return converted


def swin_relative_position_index(window: int) -> torch.Tensor:
    """The flattened (window^4,) index into the relative position bias table of a square
    window (the same constant in microsoft's and torchvision's Swin)."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij"))
    flat = coords.flatten(1)
    relative = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0) + (window - 1)
    return (relative[:, :, 0] * (2 * window - 1) + relative[:, :, 1]).flatten()


# ----------------------------------------------------------------------------- validation


def build_backbone(arch: str, num_classes: int = 1000) -> torch.nn.Module:
    """A randomly initialised torchvision network of ``arch`` (no weights are downloaded).

    ``wide_resnet50_4`` does not exist in torchvision: it is built as the robustness library
    does, a ResNet-50 with ``width_per_group=64*4``.
    """
    import torchvision.models as tvm
    from torchvision.models.resnet import Bottleneck, ResNet

    if arch == "wide_resnet50_4":
        return ResNet(Bottleneck, [3, 4, 6, 3], width_per_group=64 * 4, num_classes=num_classes)
    if arch not in BACKBONE_ARCHS:
        raise CheckpointError(f"unknown backbone arch {arch!r}; allowed: {', '.join(BACKBONE_ARCHS)}")
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
        shapes = {k: s for k, s in shapes.items() if not k.startswith(_HEAD_PREFIXES)}
    return shapes


def check_state_dict(state_dict: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]],
                     what: str = "checkpoint", ignore: Iterable[str] = ()) -> None:
    """Raise :class:`CheckpointError` listing (a few) missing, unexpected and mis-shaped keys.

    ``ignore``: key prefixes allowed to be absent from ``state_dict`` (e.g. a new head).
    """
    ignore = tuple(ignore)
    missing = [k for k in expected if k not in state_dict and not k.startswith(ignore)]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [f"{k} {tuple(state_dict[k].shape)} != {tuple(expected[k])}"
                  for k in state_dict if k in expected and tuple(state_dict[k].shape) != tuple(expected[k])]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys ({_preview(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({_preview(unexpected)})")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches ({'; '.join(mismatched[:3])})")
    if problems:
        raise CheckpointError(f"{what} does not fit the model: " + "; ".join(problems))


def to_torchvision_state_dict(obj: Any, fmt: str | None = None, *,
                              arch: str | torch.nn.Module = "resnet50", include_fc: bool = False,
                              what: str = "checkpoint") -> tuple[dict[str, torch.Tensor], str]:
    """Convert a loaded checkpoint object to a torchvision-keyed state dict, validated against
    ``arch`` (a name of :data:`BACKBONE_ARCHS` or a built model). Returns ``(state_dict, format)``.

    The ImageNet head (``fc.*`` / ``head.*``) is dropped unless ``include_fc``; then it must be
    present in the checkpoint.
    """
    state_dict, fmt = extract_state_dict(obj, fmt)
    if fmt == "swin" or _has_prefix(state_dict, "patch_embed."):
        state_dict = convert_swin_to_torchvision(state_dict)
    if not include_fc:
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith(_HEAD_PREFIXES)}
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


def load_imagenet_backbone(path: str | os.PathLike, arch: str | torch.nn.Module = "resnet50", *,
                           fmt: str | None = None, include_fc: bool = False,
                           weights_only: bool = True) -> tuple[dict[str, torch.Tensor], str]:
    """Read a published ImageNet checkpoint and return ``(torchvision_state_dict, format)``.

    ``arch`` is what the weights must fit (see :func:`to_torchvision_state_dict`); ``fmt``
    forces a layout instead of detecting it.
    """
    obj = load_checkpoint_file(path, weights_only=weights_only)
    return to_torchvision_state_dict(obj, fmt, arch=arch, include_fc=include_fc, what=str(path))


# ----------------------------------------------------------------------------- mmdet / mmseg


def to_mmdet_resnet(state_dict: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """The checkpoint mmdet/mmseg's ``ResNet`` backbone loads (``init_cfg=dict(type='Pretrained',
    checkpoint=...)``): its keys are torchvision's, so only the ImageNet ``fc.*`` is dropped."""
    return {"state_dict": {k: v for k, v in state_dict.items() if not k.startswith("fc.")}}


def save_mmdet_resnet(src: str | os.PathLike, dst: str | os.PathLike, *, fmt: str | None = None,
                      arch: str = "resnet50", weights_only: bool = True) -> str:
    """Convert a published ResNet checkpoint file to an mmdet/mmseg backbone file at ``dst``.

    Returns the detected source format. The file is written atomically.
    """
    state_dict, fmt = load_imagenet_backbone(src, arch, fmt=fmt, weights_only=weights_only)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    torch.save(to_mmdet_resnet(state_dict), tmp)
    os.replace(tmp, dst)
    return fmt
