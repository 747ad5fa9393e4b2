"""The mmseg target: the backbone files mmsegmentation 1.x configs load, and a check that a
file really fits the backbone a config builds.

* ResNets (regular, ANT, DeepAugment+AugMix, PRIME, L2-robust, and any registered torchvision-
  or timm-layout ResNet): our configs use mmseg's ``ResNet`` (v1b, ``style='pytorch'``), whose
  keys are torchvision's, so the file is exactly the detection one, written by
  :func:`.mmdet.export_mmdet_resnet` (timm's ResNet-D: mmseg's ``ResNetV1d``). (mmseg's default UperNet
  backbone, ``ResNetV1c``, has a three-conv deep stem that no published ImageNet checkpoint of
  the study has; the paper's configs switched to ``ResNet`` for the same reason.)
* Swin-T: unlike mmdet's, mmseg 1.x's ``SwinTransformer`` does **not** convert the official
  (microsoft) keys, and it loads its checkpoint with ``strict=False`` -- an unconverted file
  silently leaves the backbone randomly initialised. :func:`.swin_keys.convert_swin_to_mmseg`
  renames the keys and reorders the patch-merging channels.
* :func:`check_backbone_checkpoint` compares a converted file's keys and shapes with the
  backbone a config builds (on the meta device where possible) and names what is missing, so
  a wrong file fails before training instead of after 80k iterations from scratch.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import torch

from .catalogue import get_backbone
from .checks import CheckpointError, check_state_dict, state_dict_shapes
from .files import load_checkpoint_file, save_atomically
from .formats import extract_state_dict, has_prefix
from .mmdet import export_mmdet_resnet
from .swin_keys import convert_swin_to_mmseg

#: The Swin-T of the study, as mmseg's ``SwinTransformer`` arguments.
SWIN_T_ARGS = dict(pretrain_img_size=224, embed_dims=96, patch_size=4, window_size=7, mlp_ratio=4,
                   depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), strides=(4, 2, 2, 2),
                   out_indices=(0, 1, 2, 3), qkv_bias=True, patch_norm=True,
                   use_abs_pos_embed=False)
#: Keys of mmseg's Swin that no ImageNet checkpoint has: the LayerNorms mmseg puts on each
#: output (``norm0``..``norm3``) are trained from their default initialisation, as in mmseg.
_SWIN_NEW_KEYS = ("norm0.", "norm1.", "norm2.", "norm3.")


def mmseg_swin_shapes(**overrides) -> dict[str, tuple[int, ...]]:
    """Key -> shape of mmseg's ``SwinTransformer`` (Swin-T unless ``overrides``)."""
    from mmseg.models.backbones import SwinTransformer

    return state_dict_shapes(lambda: SwinTransformer(**{**SWIN_T_ARGS, **overrides}))


def swin_to_mmseg_state_dict(obj: Any, fmt: str | None = None, *, what: str = "checkpoint"
                             ) -> dict[str, torch.Tensor]:
    """A loaded Swin-T checkpoint (official layout, or already converted for mmseg) -> a
    validated mmseg state dict."""
    state_dict, _ = extract_state_dict(obj, fmt)
    if has_prefix(state_dict, "backbone."):  # an mmseg model checkpoint
        state_dict = {k[len("backbone."):]: v for k, v in state_dict.items()
                      if k.startswith("backbone.")}
    if has_prefix(state_dict, "layers."):
        state_dict = convert_swin_to_mmseg(state_dict)
    check_state_dict(state_dict, mmseg_swin_shapes(), f"{what} (Swin-T for mmseg)",
                     ignore=_SWIN_NEW_KEYS)
    return state_dict


def save_mmseg_swin(src: str | os.PathLike, dst: str | os.PathLike, *, weights_only: bool = True
                    ) -> str:
    """Convert the official ``swin_tiny_patch4_window7_224.pth`` to an mmseg backbone file."""
    obj = load_checkpoint_file(src, weights_only=weights_only)
    save_atomically({"state_dict": swin_to_mmseg_state_dict(obj, what=str(src))}, dst)
    return "swin"


def save_mmseg_backbone(backbone: str | None, src: str | os.PathLike, dst: str | os.PathLike, *,
                        fmt: str | None = None, arch: str | None = None,
                        weights_only: bool = True) -> str:
    """Convert an ImageNet checkpoint to the file an mmseg config loads. Returns the source
    layout.

    ``backbone`` is a catalogue id (the study's, or one registered with
    :func:`.catalogue.register_backbone` / :func:`.catalogue.load_user_backbones`): its
    architecture is used unless ``arch`` is given. Without an id, ``arch`` defaults to
    ``"auto"`` (a ResNet read off the keys; Swin files need ``arch="swin_t"``). The layout is
    detected unless ``fmt`` forces one.
    """
    entry = get_backbone(backbone) if backbone is not None else None
    arch = arch or (entry.arch if entry else "auto")
    if arch == "swin_t" or fmt == "swin":
        return save_mmseg_swin(src, dst, weights_only=weights_only)
    # mmseg's ResNet (v1b) has torchvision's keys: the detection file is the segmentation file.
    return export_mmdet_resnet(src, dst, fmt=fmt, arch=arch, weights_only=weights_only).source_format


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
    if backbone_cfg.get("type") == "SwinTransformer":
        ignore = _SWIN_NEW_KEYS
    else:  # a counter, absent from some releases; never used with momentum set
        ignore = tuple(k for k in expected if k.endswith("num_batches_tracked"))
    try:
        check_state_dict(state_dict, expected, f"backbone checkpoint {path}", ignore=ignore)
    except CheckpointError as error:
        raise CheckpointError(f"{error}. Convert published ImageNet checkpoints with "
                              "mmsegmentation/tools/model_converters/imagenet2mmseg.py") from None
    return {"checked": True, "path": str(path), "keys": len(state_dict)}
