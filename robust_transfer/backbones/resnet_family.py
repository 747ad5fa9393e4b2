"""The ResNet family the converters take: any depth, width, grouping, and the timm "d" stem.

A ResNet is described by a :class:`ResNetSpec` (block type, blocks per stage, groups, width per
group, deep stem). Named architectures (:data:`RESNET_ARCHS`: torchvision's ``resnet18`` ..
``resnet152``, ``wide_resnet50_2``, ``resnext50_32x4d`` ..., and timm's ``resnet18d`` ..
``resnet152d``) map to specs, and :func:`infer_resnet_spec` reads the spec off a state dict's
keys and shapes, so a checkpoint of any of them converts without naming its architecture.

Key layouts (the reason this module exists):

* torchvision and timm's plain ResNets share their key names: ``conv1``, ``bn1``,
  ``layerN.M.{conv,bn}{1,2,3}``, ``layerN.0.downsample.{0,1}``, ``fc``.
* timm's "d" variants (``resnet50d``: Bag-of-Tricks ResNet-D) have a three-conv deep stem
  ``conv1.{0,3,6}`` with BatchNorms ``conv1.{1,4}`` and ``bn1``, and an average-pool shortcut
  ``downsample.{1,2}`` (index 0 is the pool, or an Identity where the stride is 1).
* mmdet/mmseg's ``ResNet`` uses torchvision's names; their ``ResNetV1d`` (``deep_stem=True,
  avg_down=True``) names the stem ``stem.{0,1,3,4,6,7}`` and the shortcut ``downsample.{1,2}``
  like timm, so only the stem is renamed (:func:`to_openmmlab_keys`).

mmdet/mmseg cannot build wide ResNets (their ResNeXt block ignores ``base_width`` when
``groups=1``): :func:`openmmlab_backbone_cfg` says so in one line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from .checks import CheckpointError

#: blocks per stage -> depth, for each block type
_DEPTHS = {"basic": {(2, 2, 2, 2): 18, (3, 4, 6, 3): 34},
           "bottleneck": {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101, (3, 8, 36, 3): 152}}
#: timm's deep stem: stem conv/bn index in ``conv1.N`` -> mmdet's ``stem.N`` (bn1 is stem.7)
_DEEP_STEM_RENAMES = {"conv1.0.": "stem.0.", "conv1.1.": "stem.1.", "conv1.3.": "stem.3.",
                      "conv1.4.": "stem.4.", "conv1.6.": "stem.6.", "bn1.": "stem.7."}


@dataclass(frozen=True)
class ResNetSpec:
    """What a ResNet is: enough to build it in torchvision, mmdet/mmseg, or check its keys."""

    block: str                          # "basic" or "bottleneck"
    layers: tuple[int, int, int, int]   # blocks per stage
    groups: int = 1
    width_per_group: int = 64
    deep_stem: bool = False             # timm "d": 3-conv stem + average-pool shortcut

    @property
    def depth(self) -> int:
        """18, 34, 50, 101 or 152."""
        try:
            return _DEPTHS[self.block][tuple(self.layers)]
        except KeyError:
            raise CheckpointError(f"no ResNet depth has {self.block} blocks {list(self.layers)}") from None

    @property
    def name(self) -> str:
        """The torchvision/timm name: resnet50, wide_resnet50_2, resnext50_32x4d, resnet50d."""
        if self.groups > 1:
            base = f"resnext{self.depth}_{self.groups}x{self.width_per_group}d"
        elif self.width_per_group != 64:
            base = f"wide_resnet{self.depth}_{self.width_per_group // 64}"
        else:
            base = f"resnet{self.depth}"
        return base + ("d" if self.deep_stem else "")


def _spec(depth: int, groups: int = 1, width: int = 64, deep: bool = False) -> ResNetSpec:
    block = "basic" if depth < 50 else "bottleneck"
    layers = next(l for l, d in _DEPTHS[block].items() if d == depth)
    return ResNetSpec(block, layers, groups, width, deep)


#: Named architectures -> spec (torchvision's ResNets, the robustness library's 4x-wide
#: ResNet-50, and timm's ResNet-D variants).
RESNET_ARCHS: dict[str, ResNetSpec] = {s.name: s for s in (
    *(_spec(d) for d in (18, 34, 50, 101, 152)),
    _spec(50, width=128), _spec(101, width=128), _spec(50, width=256),
    _spec(50, 32, 4), _spec(101, 32, 8), _spec(101, 64, 4),
    *(_spec(d, deep=True) for d in (18, 34, 50, 101, 152)),
)}


def resnet_spec(arch: str) -> ResNetSpec:
    """The spec of a named ResNet; a one-line :class:`CheckpointError` listing the names otherwise."""
    try:
        return RESNET_ARCHS[arch]
    except (KeyError, TypeError):
        raise CheckpointError(f"unknown ResNet arch {arch!r}; allowed: {', '.join(RESNET_ARCHS)}") from None


def infer_resnet_spec(state_dict: Mapping, what: str = "checkpoint") -> ResNetSpec:
    """Read the ResNet a torchvision-, timm- or mmdet-keyed state dict belongs to off its keys
    and shapes (block type, blocks per stage, width, groups, deep stem).

    Raises :class:`CheckpointError` when the keys are not a ResNet's.
    """
    keys = list(state_dict)
    stages = []
    for stage in range(1, 5):
        blocks = {int(m.group(1)) for k in keys if (m := re.match(rf"layer{stage}\.(\d+)\.", k))}
        stages.append(max(blocks) + 1 if blocks else 0)
    if 0 in stages or "layer1.0.conv1.weight" not in state_dict:
        raise CheckpointError(f"{what}: not a ResNet (no layer1..layer4 blocks; keys: "
                              f"{', '.join(sorted(keys)[:5]) or 'none'})")
    block = "bottleneck" if "layer1.0.conv3.weight" in state_dict else "basic"
    width, per_group = state_dict["layer1.0.conv2.weight"].shape[:2]
    groups = int(width) // int(per_group)
    # torchvision: width = planes * width_per_group / 64 * groups, with planes = 64 in stage 1
    width_per_group = int(width) // groups if block == "bottleneck" else 64
    deep_stem = "conv1.0.weight" in state_dict or "stem.0.weight" in state_dict
    spec = ResNetSpec(block, tuple(stages), groups, width_per_group, deep_stem)
    spec.depth  # noqa: B018  (raises for stage counts of no known depth)
    return spec


def build_torchvision_resnet(spec: ResNetSpec, num_classes: int = 1000):
    """A randomly initialised torchvision ``ResNet`` of ``spec``; the "d" variants get timm's
    deep stem and average-pool shortcuts (and so timm's key names)."""
    from torch import nn
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

    block = Bottleneck if spec.block == "bottleneck" else BasicBlock
    model = ResNet(block, list(spec.layers), num_classes=num_classes, groups=spec.groups,
                   width_per_group=spec.width_per_group)
    if spec.deep_stem:
        _make_resnet_d(model, nn)
    return model


def _make_resnet_d(model, nn) -> None:
    """Give a torchvision ResNet timm's ResNet-D stem and shortcuts (stem width 32)."""
    def conv_bn(cin, cout, stride):
        return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)]

    model.conv1 = nn.Sequential(*conv_bn(3, 32, 2), nn.ReLU(inplace=True), *conv_bn(32, 32, 1),
                                nn.ReLU(inplace=True), nn.Conv2d(32, 64, 3, 1, 1, bias=False))
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        old = stage[0].downsample
        if old is None:
            continue
        stride = old[0].stride[0]
        pool = (nn.Identity() if stride == 1 else
                nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False))
        conv = nn.Conv2d(old[0].in_channels, old[0].out_channels, 1, 1, bias=False)
        stage[0].downsample = nn.Sequential(pool, conv, nn.BatchNorm2d(old[0].out_channels))


def openmmlab_backbone_cfg(spec: ResNetSpec) -> dict:
    """The mmdet/mmseg backbone config (``type`` and its shape arguments) that ``spec`` fits."""
    if spec.groups == 1 and spec.width_per_group != 64:
        raise CheckpointError(f"{spec.name}: mmdet/mmseg have no wide ResNet (their ResNeXt block "
                              "ignores base_width when groups=1); use it for classification only")
    if spec.groups > 1:
        if spec.deep_stem:
            raise CheckpointError(f"{spec.name}: mmdet/mmseg have no ResNeXt with a deep stem")
        return dict(type="ResNeXt", depth=spec.depth, groups=spec.groups,
                    base_width=spec.width_per_group)
    return dict(type="ResNetV1d" if spec.deep_stem else "ResNet", depth=spec.depth)


def to_openmmlab_keys(state_dict: Mapping, spec: ResNetSpec) -> dict:
    """torchvision/timm keys -> the keys of :func:`openmmlab_backbone_cfg`'s backbone (the deep
    stem is renamed to ``stem.*``; everything else already matches)."""
    if not spec.deep_stem:
        return dict(state_dict)
    renamed = {}
    for key, value in state_dict.items():
        prefix = next((p for p in _DEEP_STEM_RENAMES if key.startswith(p)), None)
        renamed[_DEEP_STEM_RENAMES[prefix] + key[len(prefix):] if prefix else key] = value
    return renamed
