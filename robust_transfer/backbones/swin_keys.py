"""microsoft Swin-Transformer keys renamed for each target that loads them.

The official checkpoint names its modules ``patch_embed.{proj,norm}``, ``layers.{i}.blocks.{j}.*``
(with ``attn.*``, ``mlp.fc1``, ``mlp.fc2``), ``layers.{i}.downsample.*``, ``norm.*`` and
``head.*``. :func:`_convert` walks those parts once -- the renames every target shares -- and a
:class:`SwinTarget` says only what differs: how a target names the patch embedding, a block, a
patch merging and the block's sub-modules, and what it drops.

* torchvision ``swin_t`` (classification): stages and mergings flat in ``features``.
* mmseg ``SwinTransformer``: ``stages.{i}.blocks.{j}`` and ``stages.{i}.downsample``, with the
  patch-merging channels reordered (see :func:`_merge_order_weight`).
* mmdet's ``SwinTransformer`` has the mmseg keys; its writer uses mmdet's own
  ``swin_converter`` (mmdet 3.x converts the official keys itself).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch

from .checks import CheckpointError, preview_keys


@dataclass(frozen=True)
class SwinTarget:
    """How one framework names the parts of a Swin-Transformer."""

    name: str
    patch_embed: Mapping[str, str]              # official sub-module -> target prefix
    block: Callable[[int, str], str]            # (stage, block) -> target prefix
    downsample: Callable[[int], str]            # stage -> target prefix of the merging after it
    block_renames: tuple[tuple[str, str], ...]  # official -> target sub-module prefix in a block
    drop_prefixes: tuple[str, ...] = ()         # official keys the target has no place for
    transform: Callable[[str, torch.Tensor], torch.Tensor] = lambda key, value: value


def _flatten_relative_position_index(key: str, value: torch.Tensor) -> torch.Tensor:
    # the same constant in both; 2-D (window^2, window^2) there, flattened in torchvision
    return value.flatten() if key.endswith("attn.relative_position_index") else value


def _merge_order_weight(weight: torch.Tensor) -> torch.Tensor:
    """(out, 4*C) official neighbour-major columns -> mmseg channel-major columns."""
    out_channels, in_channels = weight.shape
    groups = weight.reshape(out_channels, 4, in_channels // 4)[:, [0, 2, 1, 3], :]
    return groups.transpose(1, 2).reshape(out_channels, in_channels)


def _merge_order_vector(vector: torch.Tensor) -> torch.Tensor:
    """(4*C,) LayerNorm parameter, same reordering as :func:`_merge_order_weight`."""
    groups = vector.reshape(4, vector.shape[0] // 4)[[0, 2, 1, 3], :]
    return groups.transpose(0, 1).reshape(-1)


def _reorder_patch_merging(key: str, value: torch.Tensor) -> torch.Tensor:
    # The official code concatenates the 2x2 neighbours as top-left, bottom-left, top-right,
    # bottom-right; mmseg's nn.Unfold gives top-left, top-right, bottom-left, bottom-right
    # for each channel, so the merging's input channels are permuted.
    if ".downsample.reduction.weight" in key:
        return _merge_order_weight(value)
    if ".downsample.norm." in key:
        return _merge_order_vector(value)
    return value


#: torchvision ``SwinTransformer``: patch embedding ``features.0``, stage ``i``'s blocks
#: ``features.{2i+1}.{j}``, the merging after stage ``i`` ``features.{2i+2}``. Both concatenate
#: the 2x2 neighbours in the same order and normalise before the reduction, so weights are
#: copied unchanged; ``norm.*`` and ``head.*`` keep their names.
TORCHVISION = SwinTarget(
    "torchvision", patch_embed={"proj": "features.0.0", "norm": "features.0.2"},
    block=lambda stage, block: f"features.{2 * stage + 1}.{block}",
    downsample=lambda stage: f"features.{2 * stage + 2}",
    block_renames=(("mlp.fc1.", "mlp.0."), ("mlp.fc2.", "mlp.3.")),
    transform=_flatten_relative_position_index)

#: mmseg ``SwinTransformer``: no classifier (``head.*``), one LayerNorm per output instead of
#: the final ``norm.*``; both are dropped.
MMSEG = SwinTarget(
    "mmseg", patch_embed={"proj": "patch_embed.projection", "norm": "patch_embed.norm"},
    block=lambda stage, block: f"stages.{stage}.blocks.{block}",
    downsample=lambda stage: f"stages.{stage}.downsample",
    block_renames=(("attn.", "attn.w_msa."), ("mlp.fc1.", "ffn.layers.0.0."),
                   ("mlp.fc2.", "ffn.layers.1.")),
    drop_prefixes=("head.", "norm."), transform=_reorder_patch_merging)


def _rename(key: str, target: SwinTarget) -> str | None:
    """The target's name of an official key, None when the key is unknown."""
    parts = key.split(".")
    if parts[0] == "patch_embed" and len(parts) > 2 and parts[1] in target.patch_embed:
        return ".".join([target.patch_embed[parts[1]], *parts[2:]])
    if parts[0] == "layers" and len(parts) > 4 and parts[2] == "blocks":
        rest = ".".join(parts[4:])
        for old, new in target.block_renames:
            if rest.startswith(old):
                rest = new + rest[len(old):]
                break
        return f"{target.block(int(parts[1]), parts[3])}.{rest}"
    if parts[0] == "layers" and len(parts) > 3 and parts[2] == "downsample":
        return ".".join([target.downsample(int(parts[1])), *parts[3:]])
    if parts[0] in ("norm", "head"):
        return key
    return None


def convert_swin(state_dict: Mapping[str, torch.Tensor], target: SwinTarget) -> dict[str, torch.Tensor]:
    """Rename official Swin-Transformer keys for ``target`` (:data:`TORCHVISION` or
    :data:`MMSEG`). The shifted blocks' ``attn_mask`` buffers are dropped everywhere (both
    targets build masks on the fly). Unknown keys raise :class:`CheckpointError`."""
    converted: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        if key.endswith("attn_mask") or key.startswith(target.drop_prefixes):
            continue
        name = _rename(key, target)
        if name is None:
            unknown.append(key)
            continue
        converted[name] = target.transform(key, value)
    if unknown:
        raise CheckpointError(f"unexpected keys in the Swin checkpoint: {preview_keys(unknown)}")
    return converted


def convert_swin_to_torchvision(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official Swin-Transformer keys -> torchvision ``SwinTransformer`` keys."""
    return convert_swin(state_dict, TORCHVISION)


def convert_swin_to_mmseg(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official Swin-Transformer keys -> mmseg ``SwinTransformer`` keys (``head.*`` and the
    final ``norm.*`` dropped, patch-merging channels reordered)."""
    return convert_swin(state_dict, MMSEG)


def swin_relative_position_index(window: int) -> torch.Tensor:
    """The flattened (window^4,) index into the relative position bias table of a square
    window (the same constant in microsoft's and torchvision's Swin)."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij"))
    flat = coords.flatten(1)
    relative = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0) + (window - 1)
    return (relative[:, :, 0] * (2 * window - 1) + relative[:, :, 1]).flatten()
