"""``--freeze-level`` semantics of robust-models-transfer, and what BatchNorm does meanwhile.

robust-models-transfer walks the parameters in registration order and freezes every one up to
and including the last parameter of ``layer{k}``; everything after (for a ResNet: nothing but
the new ``fc``) is trained; ``-1`` freezes nothing. For ResNets that is ``conv1``, ``bn1`` and
``layer1..layer{k}``; ``--freeze-level 4`` is the paper's fixed-feature transfer, ``-1`` its
full-network transfer.

Swin-T has no ``layer{k}``: level ``k`` freezes the patch embedding and stages 1..k (with the
patch merging in front of each), and level 4 also the final LayerNorm, so that, as for ResNets,
level 4 leaves exactly the new head trainable.

BatchNorm in the frozen part: the original trains with ``model.train()`` on the whole
network, so frozen BatchNorm layers keep their (frozen) affine weights but still update their
running mean/variance on the CIFAR batches; at test time those adapted statistics are used.
That is the default here too (``freeze_bn_stats=False``). ``freeze_bn_stats=True`` keeps the
frozen BatchNorm layers in eval mode while training, so the backbone is bit-for-bit the
ImageNet one (what mmdet's ``norm_eval=True`` does for detection). Swin uses LayerNorm, which
has no running statistics: the choice changes nothing there.
"""
from __future__ import annotations

from torch import nn

from .models import get_arch

FREEZE_LEVELS = (-1, 1, 2, 3, 4)


def frozen_prefixes(arch: str, level: int) -> list[str]:
    """Names of the top-level modules of the network that ``level`` freezes."""
    if level not in FREEZE_LEVELS:
        raise ValueError(f"--freeze-level {level} is not supported; allowed: "
                         f"{', '.join(map(str, FREEZE_LEVELS))} (-1 = train everything)")
    if level == -1:
        return []
    if get_arch(arch).family == "swin":
        # features.0 = patch embedding, features.{2k-1} = stage k, features.{2k} = merging
        prefixes = [f"features.{i}" for i in range(2 * level)]
        return prefixes + (["norm"] if level == 4 else [])
    return ["conv1", "bn1"] + [f"layer{i}" for i in range(1, level + 1)]


def _under(name: str, prefixes: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def apply_freeze_level(net: nn.Module, arch: str, level: int) -> list[str]:
    """Set ``requires_grad`` of ``net``'s parameters for ``level``; return the trainable names."""
    prefixes = frozen_prefixes(arch, level)
    trainable = []
    for name, parameter in net.named_parameters():
        parameter.requires_grad_(not _under(name, prefixes))
        if parameter.requires_grad:
            trainable.append(name)
    if not trainable:
        raise ValueError(f"--freeze-level {level} leaves nothing to train")
    return trainable


def frozen_norm_layers(net: nn.Module, arch: str, level: int) -> list[nn.Module]:
    """The BatchNorm layers inside the frozen part (held in eval mode by ``freeze_bn_stats``)."""
    prefixes = frozen_prefixes(arch, level)
    return [module for name, module in net.named_modules()
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and _under(name, prefixes)]


def set_train_mode(model: nn.Module, frozen_norms: list[nn.Module]) -> None:
    """``model.train()``, then the given BatchNorm layers back to eval mode (their running
    statistics stay as loaded)."""
    model.train()
    for module in frozen_norms:
        module.eval()
