"""Classification networks for transfer: a registry of architectures, input normalisation
inside the model, ImageNet-checkpoint loading and head replacement.

One front door, :func:`create_model`, builds any registered architecture (torchvision's
constructors, ``weights=None``: nothing is downloaded) with torchvision key names, so the
readers of :mod:`robust_transfer.backbones` load every published backbone into it.
Architectures register with a bare decorator keyed on the function name (timm style);
``resnet_tiny`` and ``swin_tiny_test`` are tiny variants with the real key layout, for CPU tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn
from torchvision.models import resnet as _tv_resnet

from ..backbones.checks import CheckpointError
from ..backbones.classification import build_backbone, load_imagenet_backbone

#: Per-channel mean/std of the normalisation layer inside the model. ``cifar10`` and
#: ``cifar100`` are the values robust-models-transfer's data sets carry (its ``CIFAR`` data set
#: and its ``ImageNetTransfer('cifar100')``), so its CIFAR runs normalise with these.
NORMALIZATION_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
}


@dataclass(frozen=True)
class ArchSpec:
    """A registered architecture: its constructor and its family (``resnet`` or ``swin``),
    which decides the head name (``fc`` / ``head``) and the freeze levels."""

    name: str
    family: str
    build: Callable[[int], nn.Module]


_ARCHS: dict[str, ArchSpec] = {}


def _register(family: str):
    def decorator(fn: Callable[[int], nn.Module]):
        _ARCHS[fn.__name__] = ArchSpec(fn.__name__, family, fn)
        return fn
    return decorator


@_register("resnet")
def resnet18(num_classes: int = 1000) -> nn.Module:
    return build_backbone("resnet18", num_classes)


@_register("resnet")
def resnet50(num_classes: int = 1000) -> nn.Module:
    return build_backbone("resnet50", num_classes)


@_register("resnet")
def wide_resnet50_2(num_classes: int = 1000) -> nn.Module:
    return build_backbone("wide_resnet50_2", num_classes)


@_register("resnet")
def wide_resnet50_4(num_classes: int = 1000) -> nn.Module:
    """ResNet-50 with 4x wide bottlenecks (``width_per_group=256``), as the robustness library
    builds it; torchvision has no constructor for it."""
    return build_backbone("wide_resnet50_4", num_classes)


@_register("swin")
def swin_t(num_classes: int = 1000) -> nn.Module:
    return build_backbone("swin_t", num_classes)


@_register("resnet")
def resnet_tiny(num_classes: int = 1000) -> nn.Module:
    """A 4-stage ResNet with one BasicBlock per stage and widths 8/16/32/64 (~0.1M parameters),
    with torchvision's key names and forward; for tests only."""
    return _TinyResNet(num_classes)


class _TinyResNet(_tv_resnet.ResNet):
    """torchvision's ResNet with narrow stages. torchvision's constructor hard-codes the widths
    64..512, so this sets up the attributes its ``_make_layer`` and ``forward`` use itself."""

    def __init__(self, num_classes: int = 1000, width: int = 8):
        nn.Module.__init__(self)
        block = _tv_resnet.BasicBlock
        self._norm_layer, self.dilation, self.groups, self.base_width = nn.BatchNorm2d, 1, 1, 64
        self.inplanes = width  # _make_layer reads and advances it
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, 1)
        self.layer2 = self._make_layer(block, width * 2, 1, stride=2)
        self.layer3 = self._make_layer(block, width * 4, 1, stride=2)
        self.layer4 = self._make_layer(block, width * 8, 1, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8, num_classes)
        for module in self.modules():  # the initialisation torchvision's ResNet applies
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


@_register("swin")
def swin_tiny_test(num_classes: int = 1000) -> nn.Module:
    """A Swin Transformer with torchvision's swin_t key layout but one block per stage,
    embedding width 16 and 2x2 windows; for tests only (inputs of 32-64 px)."""
    from torchvision.models.swin_transformer import SwinTransformer

    return SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[1, 1, 1, 1],
                           num_heads=[1, 1, 1, 1], window_size=[2, 2],
                           stochastic_depth_prob=0.0, num_classes=num_classes)


def _register_resnet_family() -> None:
    """Every named ResNet the backbone converters know (resnet34/101/152, ResNeXt, timm's
    ResNet-D ...), so that any registered ImageNet backbone can be fine-tuned by name."""
    import functools

    from ..backbones.resnet_family import RESNET_ARCHS

    for name in RESNET_ARCHS:
        if name not in _ARCHS:
            _ARCHS[name] = ArchSpec(name, "resnet", functools.partial(build_backbone, name))


_register_resnet_family()


def list_archs() -> list[str]:
    """Names accepted by :func:`create_model` / ``--arch``."""
    return list(_ARCHS)


def get_arch(name: str) -> ArchSpec:
    """The :class:`ArchSpec` of ``name``; a ValueError lists the allowed names."""
    if name not in _ARCHS:
        raise ValueError(f"unknown --arch {name!r}; allowed: {', '.join(_ARCHS)}")
    return _ARCHS[name]


def create_model(arch: str, num_classes: int = 1000) -> nn.Module:
    """A randomly initialised network of ``arch`` with an ``num_classes``-way head."""
    return get_arch(arch).build(num_classes)


def head_name(arch: str) -> str:
    """Attribute holding the classifier: ``fc`` for ResNets, ``head`` for Swin."""
    return "head" if get_arch(arch).family == "swin" else "fc"


class NormalizedClassifier(nn.Module):
    """``net((x - mean) / std)``: inputs are images in [0, 1], normalised inside the model (as
    the robustness library's ``AttackerModel`` does), so corruptions and data loading never
    see normalised values. The state dict is ``normalizer.mean``/``.std`` + ``model.*``."""

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.normalizer = _Normalizer(mean, std)
        self.model = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(self.normalizer(images))


class _Normalizer(nn.Module):
    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std


def replace_head(net: nn.Module, arch: str, num_classes: int, additional_hidden: int = 0) -> nn.Module:
    """Replace the ImageNet classifier by a new ``num_classes``-way head, preceded by
    ``additional_hidden`` (Linear(d, d) + ReLU) blocks, as robust-models-transfer's
    ``--additional-hidden`` does. Returns the new head."""
    if additional_hidden < 0:
        raise ValueError(f"--additional-hidden must be >= 0, got {additional_hidden}")
    name = head_name(arch)
    features = getattr(net, name).in_features
    if additional_hidden == 0:
        head: nn.Module = nn.Linear(features, num_classes)
    else:
        layers: list[nn.Module] = []
        for _ in range(additional_hidden):
            layers += [nn.Linear(features, features), nn.ReLU()]
        head = nn.Sequential(*layers, nn.Linear(features, num_classes))
    setattr(net, name, head)
    return head


def normalization_stats(normalization: str, dataset: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean/std for ``--normalization``: ``dataset`` (the data set's own statistics, what
    robust-models-transfer does) or ``imagenet``."""
    key = dataset if normalization == "dataset" else normalization
    if key not in NORMALIZATION_STATS:
        raise ValueError(f"no normalisation statistics for {key!r}; --normalization must be "
                         f"'dataset' or 'imagenet'")
    return NORMALIZATION_STATS[key]


def build_transfer_model(arch: str, num_classes: int, *, model_path: str | None = None,
                         model_format: str | None = None, additional_hidden: int = 0,
                         mean: Sequence[float] = NORMALIZATION_STATS["imagenet"][0],
                         std: Sequence[float] = NORMALIZATION_STATS["imagenet"][1],
                         weights_only: bool = True) -> tuple[NormalizedClassifier, str | None]:
    """The model to fine-tune: ``arch`` with the ImageNet weights of ``model_path`` (any layout
    of :data:`robust_transfer.backbones.SUPPORTED_FORMATS`; None = random initialisation),
    its head replaced for ``num_classes``, wrapped with the input normalisation.

    Returns ``(model, detected checkpoint format or None)``. The new head's initialisation
    draws from torch's global generator: seed it first for a reproducible run.
    """
    net = create_model(arch, 1000)
    source_format = None
    if model_path:
        state_dict, source_format = load_imagenet_backbone(
            model_path, net, fmt=model_format, weights_only=weights_only)
        # the ImageNet head is not in state_dict and gets replaced below
        missing, unexpected = net.load_state_dict(state_dict, strict=False)
        head = head_name(arch) + "."
        if unexpected or any(not k.startswith(head) for k in missing):
            raise CheckpointError(
                f"{model_path}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    replace_head(net, arch, num_classes, additional_hidden)
    return NormalizedClassifier(net, mean, std), source_format
