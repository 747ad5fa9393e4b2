"""ImageNet backbones for mmsegmentation 1.x: conversion, the file names the configs expect,
and a check that a backbone file really fits the model a config builds.

* ResNet-50 (regular, ANT, DeepAugment+AugMix, PRIME, L2-robust): our configs use mmseg's
  ``ResNet`` (v1b, ``style='pytorch'``), whose keys are torchvision's, so the file is exactly the
  detection one: :func:`robust_transfer.checkpoints.save_mmdet_resnet`. (mmseg's default UperNet
  backbone, ``ResNetV1c``, has a three-conv deep stem that no published ImageNet checkpoint of
  the study has; the paper's configs switched to ``ResNet`` for the same reason.)
* Swin-T: unlike mmdet's, mmseg 1.x's ``SwinTransformer`` does **not** convert the official
  (microsoft) keys, and it loads its checkpoint with ``strict=False`` -- an unconverted file
  silently leaves the backbone randomly initialised. :func:`convert_swin_to_mmseg` renames the
  keys and reorders the patch-merging channels (the official code concatenates the 2x2
  neighbours as top-left, bottom-left, top-right, bottom-right; mmseg's ``nn.Unfold`` gives
  top-left, top-right, bottom-left, bottom-right for each channel).
* :func:`check_backbone_checkpoint` compares a converted file's keys and shapes with the
  backbone a config builds (on the meta device where possible) and names what is missing, so
  a wrong file fails before training instead of after 80k iterations from scratch.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch

from ..checkpoints import (CheckpointError, check_state_dict, extract_state_dict,
                           load_checkpoint_file, save_mmdet_resnet)

#: Backbone id -> (architecture, file name under ``mmsegmentation/checkpoints/`` that the
#: paper configs load). One table for the converter's default output and the configs' tests.
BACKBONE_FILES: dict[str, tuple[str, str]] = {
    "regular": ("resnet50", "resnet50_regular_mmseg.pth"),
    "ant": ("resnet50", "resnet50_ant_mmseg.pth"),
    "deepaug_augmix": ("resnet50", "resnet50_deepaug_augmix_mmseg.pth"),
    "prime": ("resnet50", "resnet50_prime_mmseg.pth"),
    "l2_eps0.1": ("resnet50", "resnet50_l2_eps0.1_mmseg.pth"),
    "l2_eps1": ("resnet50", "resnet50_l2_eps1_mmseg.pth"),
    "l2_eps3": ("resnet50", "resnet50_l2_eps3_mmseg.pth"),
    "l2_eps5": ("resnet50", "resnet50_l2_eps5_mmseg.pth"),
    "swin_t": ("swin_t", "swin_tiny_patch4_window7_224_mmseg.pth"),
}

#: The Swin-T of the study, as mmseg's ``SwinTransformer`` arguments.
SWIN_T_ARGS = dict(pretrain_img_size=224, embed_dims=96, patch_size=4, window_size=7, mlp_ratio=4,
                   depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), strides=(4, 2, 2, 2),
                   out_indices=(0, 1, 2, 3), qkv_bias=True, patch_norm=True,
                   use_abs_pos_embed=False)
#: Keys of mmseg's Swin that no ImageNet checkpoint has: the LayerNorms mmseg puts on each
#: output (``norm0``..``norm3``) are trained from their default initialisation, as in mmseg.
_SWIN_NEW_KEYS = ("norm0.", "norm1.", "norm2.", "norm3.")


# ----------------------------------------------------------------------------- Swin-T


def _merge_order_weight(weight: torch.Tensor) -> torch.Tensor:
    """(out, 4*C) official neighbour-major columns -> mmseg channel-major columns."""
    out_channels, in_channels = weight.shape
    groups = weight.reshape(out_channels, 4, in_channels // 4)[:, [0, 2, 1, 3], :]
    return groups.transpose(1, 2).reshape(out_channels, in_channels)


def _merge_order_vector(vector: torch.Tensor) -> torch.Tensor:
    """(4*C,) LayerNorm parameter, same reordering as :func:`_merge_order_weight`."""
    groups = vector.reshape(4, vector.shape[0] // 4)[[0, 2, 1, 3], :]
    return groups.transpose(0, 1).reshape(-1)


_BLOCK_RENAMES = (("attn.", "attn.w_msa."), ("mlp.fc1.", "ffn.layers.0.0."),
                  ("mlp.fc2.", "ffn.layers.1."))


def convert_swin_to_mmseg(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename official Swin-Transformer keys (``patch_embed.proj``, ``layers.i.blocks.j.attn``,
    ``mlp.fc1``...) to mmseg's (``patch_embed.projection``, ``stages.i.blocks.j.attn.w_msa``,
    ``ffn.layers.0.0``...). The classifier (``head.*``), the final ``norm.*`` (mmseg has one
    LayerNorm per output instead) and the shifted blocks' ``attn_mask`` buffers (mmseg builds
    masks on the fly) are dropped. Unknown keys raise :class:`CheckpointError`.
    """
    converted: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        if key.startswith(("head.", "norm.")) or key.endswith("attn_mask"):
            continue
        if key.startswith("patch_embed."):
            converted[key.replace("patch_embed.proj.", "patch_embed.projection.")] = value
        elif key.startswith("layers.") and ".blocks." in key:
            new_key = "stages." + key[len("layers."):]
            for old, new in _BLOCK_RENAMES:
                if f".{old}" in new_key:
                    new_key = new_key.replace(f".{old}", f".{new}", 1)
                    break
            converted[new_key] = value
        elif key.startswith("layers.") and ".downsample." in key:
            new_key = "stages." + key[len("layers."):]
            if key.endswith("reduction.weight"):
                value = _merge_order_weight(value)
            elif ".downsample.norm." in key:
                value = _merge_order_vector(value)
            converted[new_key] = value
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(f"unexpected keys in the Swin checkpoint: {sorted(unknown)[:5]} "
                              f"({len(unknown)} in all)")
    return converted


def state_dict_shapes(build) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the state dict of the module ``build()`` returns, built on the meta
    device (no memory, no initialisation) when the module allows it, else on the CPU (mmseg's
    Swin calls ``.item()`` while it is built)."""
    try:
        with torch.device("meta"):
            module = build()
    except (RuntimeError, NotImplementedError):
        module = build()
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def mmseg_swin_shapes(**overrides) -> dict[str, tuple[int, ...]]:
    """Key -> shape of mmseg's ``SwinTransformer`` (Swin-T unless ``overrides``)."""
    from mmseg.models.backbones import SwinTransformer

    return state_dict_shapes(lambda: SwinTransformer(**{**SWIN_T_ARGS, **overrides}))


def swin_to_mmseg_state_dict(obj: Any, fmt: str | None = None, *, what: str = "checkpoint"
                             ) -> dict[str, torch.Tensor]:
    """A loaded Swin-T checkpoint (official layout, or already converted for mmseg) -> a
    validated mmseg state dict."""
    state_dict, _ = extract_state_dict(obj, fmt)
    if any(k.startswith("backbone.") for k in state_dict):  # an mmseg model checkpoint
        state_dict = {k[len("backbone."):]: v for k, v in state_dict.items()
                      if k.startswith("backbone.")}
    if any(k.startswith("layers.") for k in state_dict):
        state_dict = convert_swin_to_mmseg(state_dict)
    check_state_dict(state_dict, mmseg_swin_shapes(), f"{what} (Swin-T for mmseg)",
                     ignore=_SWIN_NEW_KEYS)
    return state_dict


def _save_atomically(document: Mapping, dst: str | os.PathLike) -> None:
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    torch.save(dict(document), tmp)
    os.replace(tmp, dst)


def save_mmseg_swin(src: str | os.PathLike, dst: str | os.PathLike, *, weights_only: bool = True
                    ) -> str:
    """Convert the official ``swin_tiny_patch4_window7_224.pth`` to an mmseg backbone file."""
    obj = load_checkpoint_file(src, weights_only=weights_only)
    state_dict = swin_to_mmseg_state_dict(obj, what=str(src))
    _save_atomically({"state_dict": state_dict}, dst)
    return "swin"


def save_mmseg_backbone(backbone: str, src: str | os.PathLike, dst: str | os.PathLike, *,
                        fmt: str | None = None, weights_only: bool = True) -> str:
    """Convert a published ImageNet checkpoint of ``backbone`` (a key of
    :data:`BACKBONE_FILES`) to the file an mmseg config loads. Returns the source layout."""
    if backbone not in BACKBONE_FILES:
        raise CheckpointError(f"unknown backbone {backbone!r}; allowed: {', '.join(BACKBONE_FILES)}")
    arch, _ = BACKBONE_FILES[backbone]
    if arch == "swin_t":
        return save_mmseg_swin(src, dst, weights_only=weights_only)
    # mmseg's ResNet (v1b) has torchvision's keys: the detection file is the segmentation file.
    return save_mmdet_resnet(src, dst, fmt=fmt, arch=arch, weights_only=weights_only)


# ----------------------------------------------------------------------------- checking a config


def pretrained_backbone_path(cfg) -> str | None:
    """The checkpoint a config's backbone loads (``init_cfg=dict(type='Pretrained', ...)`` or the
    deprecated ``model.pretrained``), or None when it starts from scratch."""
    model = cfg["model"]
    init_cfg = model["backbone"].get("init_cfg")
    if isinstance(init_cfg, Mapping) and init_cfg.get("type") == "Pretrained":
        return init_cfg.get("checkpoint")
    return model.get("pretrained") or model["backbone"].get("pretrained")


def check_backbone_checkpoint(cfg, path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Check that the backbone file of ``cfg`` (or ``path``) fits the backbone ``cfg`` builds.

    mmengine loads pretrained backbones with ``strict=False``, so a file of the wrong layout
    trains from random weights with only a log line. This raises :class:`CheckpointError`
    naming the missing / unexpected / mis-shaped keys instead. Remote URIs (``http(s)://``,
    ``open-mmlab://``, ``torchvision://``) are not checked. Returns a small summary.
    """
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    path = path if path is not None else pretrained_backbone_path(cfg)
    if path is None:
        return {"checked": False, "reason": "the backbone starts from scratch"}
    if "://" in str(path):
        return {"checked": False, "reason": f"remote checkpoint {path}"}
    register_all_modules(init_default_scope=False)
    backbone_cfg = dict(cfg["model"]["backbone"])
    backbone_cfg.pop("init_cfg", None)
    backbone_cfg.pop("pretrained", None)
    expected = state_dict_shapes(lambda: MODELS.build(backbone_cfg))
    obj = load_checkpoint_file(path)
    state_dict = obj.get("state_dict", obj) if isinstance(obj, Mapping) else obj
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(f"{path}: no state dict inside")
    is_swin = backbone_cfg.get("type") == "SwinTransformer"
    ignore = _SWIN_NEW_KEYS if is_swin else ()
    if not is_swin:  # a counter, absent from some releases; never used with momentum set
        expected_counters = [k for k in expected if k.endswith("num_batches_tracked")]
        ignore = tuple(expected_counters)
    try:
        check_state_dict(state_dict, expected, f"backbone checkpoint {path}", ignore=ignore)
    except CheckpointError as error:
        raise CheckpointError(f"{error}. Convert published ImageNet checkpoints with "
                              "mmsegmentation/tools/model_converters/imagenet2mmseg.py") from None
    return {"checked": True, "path": str(path), "keys": len(state_dict)}
