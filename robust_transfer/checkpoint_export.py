"""Export published ImageNet backbones to the files mmdet's (and mmseg's) backbones load, with a
report of what was kept, dropped, missing and unexpected.

Reading and key conversion are :mod:`robust_transfer.checkpoints`'s (``weights_only=True``);
this module adds the check against the framework's own backbone class and the written file:

* ResNet (torchvision, ANT, DeepAugment+AugMix, PRIME, robustness-library L2 models):
  ``{"state_dict": torchvision keys without fc.*}`` -- mmdet's ``ResNet`` uses torchvision's
  key names; loaded with ``init_cfg=dict(type='Pretrained', checkpoint=FILE)``.
* Swin-T (microsoft/Swin-Transformer): ``{"state_dict": {"backbone.<mmdet key>": ...}}``, the
  keys mmdet's ``SwinTransformer`` reads with ``convert_weights=False`` (it keeps only
  ``backbone.``-prefixed entries). The renaming is mmdet's own ``swin_converter``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from .checkpoints import (CheckpointError, extract_state_dict, load_checkpoint_file,
                          to_torchvision_state_dict)

#: mmdet's Swin-T (swin_tiny_patch4_window7_224) hyper-parameters.
SWIN_T = dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7)
_RESNET_DEPTHS = {"resnet18": 18, "resnet34": 34, "resnet50": 50, "resnet101": 101}


@dataclass
class ExportReport:
    """What an export did (all key lists sorted)."""

    source: str
    source_format: str
    destination: str
    kept: int
    dropped: list[str] = field(default_factory=list)      # in the source, not written
    missing: list[str] = field(default_factory=list)      # the framework's backbone has, the file lacks
    unexpected: list[str] = field(default_factory=list)   # written keys the backbone does not have

    def summary(self) -> str:
        def show(keys: list[str]) -> str:
            return "none" if not keys else f"{len(keys)} ({', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''})"

        groups = _group_keys(self.dropped)
        dropped = "none" if not groups else ", ".join(f"{g} ({n})" for g, n in groups.items())
        return (f"{self.source} [{self.source_format}] -> {self.destination}\n"
                f"  kept {self.kept} tensors; dropped from the source: {dropped}\n"
                f"  against the mmdet backbone: missing {show(self.missing)}; "
                f"unexpected {show(self.unexpected)}")


def _group_keys(keys: list[str]) -> dict[str, int]:
    """``{'model.module.attacker.model.*': 122, 'model.module.model.fc.*': 2, ...}``: keys
    grouped by the prefix in front of a network key (the classifier kept apart)."""
    groups: dict[str, int] = {}
    for key in keys:
        parts = key.split(".")
        group = ".".join(parts[:-1]) + ".*" if len(parts) > 1 else key
        for i, part in enumerate(parts):
            if part in ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc", "patch_embed",
                        "layers", "norm", "head"):
                group = ".".join(parts[:i + (1 if part in ("fc", "head", "norm") else 0)]) + ".*"
                break
        if group == ".*":  # a network buffer dropped by name, e.g. Swin's attn_mask
            group = "*." + parts[-1]
        groups[group] = groups.get(group, 0) + 1
    return groups


def _flat_keys(obj: Any) -> list[str]:
    """Every tensor key of a loaded checkpoint, containers flattened (``model.x``...)."""
    if isinstance(obj, torch.Tensor):
        return [""]
    if isinstance(obj, Mapping):
        keys = []
        for k, v in obj.items():
            if isinstance(v, torch.Tensor):
                keys.append(str(k))
            elif isinstance(v, Mapping):
                keys += [f"{k}.{sub}" for sub in _flat_keys(v)]
        return keys
    return []


def _dropped_keys(source_keys: list[str], written: Mapping[str, Any]) -> list[str]:
    """Source keys that did not become a written key. The network sits under one prefix of
    the source (``''``, ``module.``, ``model.module.model.``...): the shortest prefix that holds
    the most written keys; the robustness library's attacker copy, normalizers, classifier,
    optimizer state etc. are everything else."""
    source = set(source_keys)
    candidates = {k[:-len("conv1.weight")] for k in source if k.endswith("conv1.weight")} or {""}
    prefix = min(candidates, key=lambda p: (-sum(p + k in source for k in written), len(p)))
    return sorted(source - {prefix + k for k in written})


def _save(obj: Mapping, dst: str | os.PathLike) -> None:
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, dst)


def _mmdet_backbone_keys(cfg: dict) -> set[str]:
    """State-dict keys of an mmdet backbone built on the meta device (no weights allocated)."""
    import robust_transfer.integrations.mmdet  # noqa: F401  (registers mmdet's modules)
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope("mmdet"), torch.device("meta"):
        model = MODELS.build(cfg)
    return set(model.state_dict())


def export_mmdet_resnet(src: str | os.PathLike, dst: str | os.PathLike, *, fmt: str | None = None,
                        arch: str = "resnet50", weights_only: bool = True,
                        strict: bool = True) -> ExportReport:
    """Convert a published ResNet checkpoint to the file mmdet's ``ResNet`` loads.

    Raises :class:`~robust_transfer.checkpoints.CheckpointError` when the weights do not fit
    ``arch`` (missing, unexpected or mis-shaped keys), or -- with ``strict`` -- when the result
    does not match mmdet's ``ResNet(depth=...)`` key for key.
    """
    if arch not in _RESNET_DEPTHS:
        raise CheckpointError(f"unknown ResNet arch {arch!r}; allowed: {', '.join(_RESNET_DEPTHS)}")
    obj = load_checkpoint_file(src, weights_only=weights_only)
    state_dict, fmt = to_torchvision_state_dict(obj, fmt, arch=arch, what=str(src))
    written = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
    dropped = _dropped_keys(_flat_keys(obj), written)
    expected = _mmdet_backbone_keys(dict(type="ResNet", depth=_RESNET_DEPTHS[arch]))
    report = ExportReport(str(src), fmt, str(dst), len(written), dropped,
                          sorted(expected - set(written)), sorted(set(written) - expected))
    if strict and (report.missing or report.unexpected):
        raise CheckpointError("the converted weights do not match mmdet's ResNet:\n" + report.summary())
    _save({"state_dict": written, "meta": {"source_format": fmt, "source": Path(src).name,
                                           "arch": arch}}, dst)
    return report


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
    if not any(k.startswith("patch_embed.") for k in state_dict):
        raise CheckpointError(f"{src}: not a microsoft Swin checkpoint (no patch_embed.* keys)")
    converted = {k[len("backbone."):]: v for k, v in swin_converter(state_dict).items()}
    cfg = dict(type="SwinTransformer", embed_dims=arch["embed_dims"], depths=tuple(arch["depths"]),
               num_heads=tuple(arch["num_heads"]), window_size=arch["window_size"],
               out_indices=(0, 1, 2, 3), convert_weights=False)
    import robust_transfer.integrations.mmdet  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope("mmdet"):
        shapes = {k: tuple(v.shape) for k, v in MODELS.build(cfg).state_dict().items()}
    unused = sorted(k for k in converted if k not in shapes)
    written = {k: v for k, v in converted.items() if k in shapes}
    allowed_unused = [k for k in unused if k.startswith("norm.") or k.endswith("attn_mask")]
    mismatched = [f"{k} {tuple(v.shape)} != {shapes[k]}" for k, v in written.items()
                  if tuple(v.shape) != shapes[k] and not k.endswith("relative_position_bias_table")]
    missing = sorted(set(shapes) - set(written))
    # report drops in the source's names: head.*, norm.*, layers.*.attn_mask
    renamed = {k: next(iter(swin_converter({k: v})), "backbone.")[len("backbone."):]
               for k, v in state_dict.items()}
    dropped = sorted(k for k, name in renamed.items() if name not in written)
    report = ExportReport(str(src), fmt, str(dst), len(written), dropped,
                          missing, sorted(set(unused) - set(allowed_unused)))
    new_norms = [k for k in missing if k.split(".")[0] in {"norm0", "norm1", "norm2", "norm3"}]
    if strict and (report.unexpected or mismatched or set(missing) - set(new_norms)):
        raise CheckpointError("the converted Swin weights do not match mmdet's SwinTransformer:\n"
                              + report.summary() + ("\n  shape mismatches: " + "; ".join(mismatched[:3])
                                                    if mismatched else ""))
    _save({"state_dict": {f"backbone.{k}": v for k, v in written.items()},
           "meta": {"source_format": fmt, "source": Path(src).name, "arch": dict(arch)}}, dst)
    return report


def converter_main(argv=None, *, fmt: str | None = None, kind: str = "resnet",
                   description: str | None = None) -> ExportReport:
    """Command line of ``mmdetection/tools/model_converters/*.py``: ``SRC DST`` plus
    ``--format`` / ``--arch`` (ResNet) and ``--unsafe-load``; prints the report."""
    import argparse

    from .checkpoints import SUPPORTED_FORMATS

    parser = argparse.ArgumentParser(description=description or "Convert an ImageNet checkpoint "
                                     "to the backbone file mmdet/mmseg load")
    parser.add_argument("src", help="the published checkpoint")
    parser.add_argument("dst", help="the file to write (use it as the config's backbone_checkpoint)")
    if kind == "resnet":
        parser.add_argument("--format", default=fmt, choices=[f for f in SUPPORTED_FORMATS if f != "swin"],
                            help="source layout (default: detected)" if fmt is None else f"default {fmt}")
        parser.add_argument("--arch", default="resnet50", choices=sorted(_RESNET_DEPTHS))
    parser.add_argument("--unsafe-load", action="store_true",
                        help="torch.load with weights_only=False (only for files you trust)")
    args = parser.parse_args(argv)
    try:
        if kind == "resnet":
            report = export_mmdet_resnet(args.src, args.dst, fmt=args.format, arch=args.arch,
                                         weights_only=not args.unsafe_load)
        else:
            report = export_mmdet_swin(args.src, args.dst, weights_only=not args.unsafe_load)
    except CheckpointError as error:
        parser.exit(1, f"error: {error}\n")
    print(report.summary())
    return report
