"""The mmdet target: the backbone files mmdet's ``ResNet`` and ``SwinTransformer`` load, with a
report of what was kept, dropped, missing and unexpected.

* ResNet (torchvision, timm, ANT, DeepAugment+AugMix, PRIME, robustness-library L2 models;
  any depth, ResNeXt, timm's ResNet-D): ``{"state_dict": torchvision keys without fc.*,
  "meta": {..., "backbone_cfg": ...}}`` -- mmdet's (and mmseg's) ``ResNet`` uses torchvision's
  key names (ResNet-D: ``ResNetV1d``, its deep stem renamed to ``stem.*``); loaded with
  ``init_cfg=dict(type='Pretrained', checkpoint=FILE)``. ``meta.backbone_cfg`` is the backbone
  ``type``/``depth`` the file fits. :func:`export_mmdet_resnet` is the one writer of this file,
  for both frameworks.
* Swin-T (microsoft/Swin-Transformer): ``{"state_dict": {"backbone.<mmdet key>": ...}}``, the
  keys mmdet's ``SwinTransformer`` reads with ``convert_weights=False`` (it keeps only
  ``backbone.``-prefixed entries). The renaming is mmdet's own ``swin_converter``.

:func:`converter_main` is the command line of ``mmdetection/tools/model_converters/*.py``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch

from .checks import CheckpointError, state_dict_shapes
from .classification import AUTO, to_torchvision_state_dict
from .export_report import ExportReport, dropped_keys, flat_keys
from .files import load_checkpoint_file, save_atomically
from .formats import SUPPORTED_FORMATS, extract_state_dict, has_prefix
from .resnet_family import (RESNET_ARCHS, infer_resnet_spec, openmmlab_backbone_cfg, resnet_spec,
                            to_openmmlab_keys)

#: mmdet's Swin-T (swin_tiny_patch4_window7_224) hyper-parameters.
SWIN_T = dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7)
#: ResNet archs mmdet/mmseg can build (every named one but the wide ResNets).
MMDET_RESNET_ARCHS = tuple(a for a, spec in RESNET_ARCHS.items()
                           if spec.groups > 1 or spec.width_per_group == 64)
#: mmdet's Swin puts a LayerNorm on each output (new, trained from its default initialisation).
_SWIN_OUTPUT_NORMS = {"norm0", "norm1", "norm2", "norm3"}


def mmdet_backbone_shapes(cfg: dict) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the mmdet backbone ``cfg`` builds (on the meta device where possible)."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope

    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope("mmdet"):
        return state_dict_shapes(lambda: MODELS.build(cfg))


def mmdet_resnet_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights mmdet/mmseg's ``ResNet`` loads: torchvision's keys without the ImageNet ``fc.*``."""
    return {k: v for k, v in state_dict.items() if not k.startswith("fc.")}


def export_mmdet_resnet(src: str | os.PathLike, dst: str | os.PathLike, *, fmt: str | None = None,
                        arch: str = AUTO, weights_only: bool = True,
                        strict: bool = True) -> ExportReport:
    """Convert a published ResNet checkpoint to the file mmdet's (and mmseg's) ResNet loads.

    ``arch`` is a name of :data:`.resnet_family.RESNET_ARCHS` or ``"auto"`` (read off the keys
    and shapes). Raises :class:`CheckpointError` when the weights do not fit ``arch`` (missing,
    unexpected or mis-shaped keys), when mmdet has no such backbone (wide ResNets), or -- with
    ``strict`` -- when the result does not match the mmdet backbone key for key. The file is
    written atomically; its ``meta.backbone_cfg`` names the backbone config it fits.
    """
    if arch != AUTO:
        resnet_spec(arch)  # one line listing the names for a typo, before reading the file
    obj = load_checkpoint_file(src, weights_only=weights_only)
    state_dict, fmt = to_torchvision_state_dict(obj, fmt, arch=arch, what=str(src))
    spec = infer_resnet_spec(state_dict, str(src))
    backbone_cfg = openmmlab_backbone_cfg(spec)
    kept = mmdet_resnet_state_dict(state_dict)
    dropped = dropped_keys(flat_keys(obj), kept)  # (before the deep stem's rename)
    written = to_openmmlab_keys(kept, spec)
    expected = set(mmdet_backbone_shapes(backbone_cfg))
    report = ExportReport(str(src), fmt, str(dst), len(written), dropped,
                          sorted(expected - set(written)), sorted(set(written) - expected))
    if strict and (report.missing or report.unexpected):
        raise CheckpointError(f"the converted weights do not match mmdet's {backbone_cfg['type']}:\n"
                              + report.summary())
    save_atomically({"state_dict": written, "meta": {"source_format": fmt, "source": Path(src).name,
                                                     "arch": spec.name, "backbone_cfg": backbone_cfg}},
                    dst)
    return report


def _mmdet_swin_cfg(arch: Mapping[str, Any]) -> dict:
    return dict(type="SwinTransformer", embed_dims=arch["embed_dims"], depths=tuple(arch["depths"]),
                num_heads=tuple(arch["num_heads"]), window_size=arch["window_size"],
                out_indices=(0, 1, 2, 3), convert_weights=False)


def _swin_dropped(state_dict: Mapping[str, torch.Tensor], written: Mapping) -> list[str]:
    """Source keys (official names: head.*, norm.*, layers.*.attn_mask) not written."""
    from mmdet.models.backbones.swin import swin_converter

    renamed = {k: next(iter(swin_converter({k: v})), "backbone.")[len("backbone."):]
               for k, v in state_dict.items()}
    return sorted(k for k, name in renamed.items() if name not in written)


def export_mmdet_swin(src: str | os.PathLike, dst: str | os.PathLike, *,
                      arch: Mapping[str, Any] = SWIN_T, weights_only: bool = True,
                      strict: bool = True) -> ExportReport:
    """Convert microsoft's Swin checkpoint (``{'model': ...}``) to mmdet ``SwinTransformer``
    keys (``backbone.``-prefixed; load with ``convert_weights=False``).

    Dropped: the classifier ``head.*``, the final ``norm.*`` (mmdet has one norm per output
    stage, ``norm0..3``, which are new and reported missing) and the shifted windows'
    ``attn_mask`` buffers (mmdet computes masks on the fly). With ``strict``, any other
    missing/unexpected key or shape mismatch is an error.
    """
    from mmdet.models.backbones.swin import swin_converter

    obj = load_checkpoint_file(src, weights_only=weights_only)
    state_dict, fmt = extract_state_dict(obj, "swin")
    if not has_prefix(state_dict, "patch_embed."):
        raise CheckpointError(f"{src}: not a microsoft Swin checkpoint (no patch_embed.* keys)")
    converted = {k[len("backbone."):]: v for k, v in swin_converter(state_dict).items()}
    shapes = mmdet_backbone_shapes(_mmdet_swin_cfg(arch))
    written = {k: v for k, v in converted.items() if k in shapes}
    unused = sorted(k for k in converted if k not in shapes)
    allowed_unused = [k for k in unused if k.startswith("norm.") or k.endswith("attn_mask")]
    mismatched = [f"{k} {tuple(v.shape)} != {shapes[k]}" for k, v in written.items()
                  if tuple(v.shape) != shapes[k] and not k.endswith("relative_position_bias_table")]
    missing = sorted(set(shapes) - set(written))
    report = ExportReport(str(src), fmt, str(dst), len(written), _swin_dropped(state_dict, written),
                          missing, sorted(set(unused) - set(allowed_unused)))
    new_norms = [k for k in missing if k.split(".")[0] in _SWIN_OUTPUT_NORMS]
    if strict and (report.unexpected or mismatched or set(missing) - set(new_norms)):
        raise CheckpointError("the converted Swin weights do not match mmdet's SwinTransformer:\n"
                              + report.summary() + ("\n  shape mismatches: " + "; ".join(mismatched[:3])
                                                    if mismatched else ""))
    save_atomically({"state_dict": {f"backbone.{k}": v for k, v in written.items()},
                     "meta": {"source_format": fmt, "source": Path(src).name, "arch": dict(arch)}}, dst)
    return report


def converter_main(argv=None, *, fmt: str | None = None, kind: str = "resnet",
                   description: str | None = None) -> ExportReport:
    """Command line of ``mmdetection/tools/model_converters/*.py``: ``SRC DST`` plus
    ``--format`` / ``--arch`` (ResNet) and ``--unsafe-load``; prints the report."""
    import argparse

    parser = argparse.ArgumentParser(description=description or "Convert an ImageNet checkpoint "
                                     "to the backbone file mmdet/mmseg load")
    parser.add_argument("src", help="the published checkpoint")
    parser.add_argument("dst", help="the file to write (use it as the config's backbone_checkpoint)")
    if kind == "resnet":
        parser.add_argument("--format", default=fmt, choices=[f for f in SUPPORTED_FORMATS if f != "swin"],
                            help="source layout (default: detected)" if fmt is None else f"default {fmt}")
        parser.add_argument("--arch", default=AUTO, choices=[AUTO, *MMDET_RESNET_ARCHS],
                            help="the ResNet the weights are (default auto: read off the keys "
                                 "and shapes)")
    parser.add_argument("--unsafe-load", action="store_true",
                        help="torch.load with weights_only=False (only for files you trust)")
    args = parser.parse_args(argv)
    try:
        if kind == "resnet":
            report = export_mmdet_resnet(args.src, args.dst, fmt=args.format, arch=args.arch,
                                         weights_only=not args.unsafe_load)
        else:
            report = export_mmdet_swin(args.src, args.dst, weights_only=not args.unsafe_load)
    except (CheckpointError, OSError) as error:  # OSError: DST cannot be written
        parser.exit(2, f"error: {error}\n")
    print(report.summary())
    return report
