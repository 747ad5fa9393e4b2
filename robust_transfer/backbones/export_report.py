"""What a conversion did: the keys kept, dropped from the source, and missing or unexpected
against the framework's backbone -- printed by the converter tools so a user sees at a glance
that only the classifier and the wrappers' extras were left behind."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

# A key part that starts the network's own names; what stands before it is a wrapper prefix.
_NETWORK_ROOTS = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc", "patch_embed",
                  "layers", "norm", "head")
# Roots reported as a group of their own (the classifier and the final norm).
_GROUPED_ROOTS = ("fc", "head", "norm")


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
        """Three lines: source -> destination, what was dropped, what does not match."""
        def show(keys: list[str]) -> str:
            return "none" if not keys else f"{len(keys)} ({', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''})"

        groups = group_keys(self.dropped)
        dropped = "none" if not groups else ", ".join(f"{g} ({n})" for g, n in groups.items())
        return (f"{self.source} [{self.source_format}] -> {self.destination}\n"
                f"  kept {self.kept} tensors; dropped from the source: {dropped}\n"
                f"  against the mmdet backbone: missing {show(self.missing)}; "
                f"unexpected {show(self.unexpected)}")


def group_keys(keys: list[str]) -> dict[str, int]:
    """``{'model.module.attacker.model.*': 122, 'model.module.model.fc.*': 2, ...}``: keys
    grouped by the prefix in front of a network key (the classifier kept apart)."""
    groups: dict[str, int] = {}
    for key in keys:
        parts = key.split(".")
        group = ".".join(parts[:-1]) + ".*" if len(parts) > 1 else key
        for i, part in enumerate(parts):
            if part in _NETWORK_ROOTS:
                group = ".".join(parts[:i + (1 if part in _GROUPED_ROOTS else 0)]) + ".*"
                break
        if group == ".*":  # a network buffer dropped by name, e.g. Swin's attn_mask
            group = "*." + parts[-1]
        groups[group] = groups.get(group, 0) + 1
    return groups


def flat_keys(obj: Any) -> list[str]:
    """Every tensor key of a loaded checkpoint, containers flattened (``model.x``...)."""
    if isinstance(obj, torch.Tensor):
        return [""]
    if isinstance(obj, Mapping):
        keys = []
        for k, v in obj.items():
            if isinstance(v, torch.Tensor):
                keys.append(str(k))
            elif isinstance(v, Mapping):
                keys += [f"{k}.{sub}" for sub in flat_keys(v)]
        return keys
    return []


def dropped_keys(source_keys: list[str], written: Mapping[str, Any]) -> list[str]:
    """Source keys that did not become a written key. The network sits under one prefix of
    the source (``''``, ``module.``, ``model.module.model.``...): the shortest prefix that holds
    the most written keys; the robustness library's attacker copy, normalizers, classifier,
    optimizer state etc. are everything else."""
    source = set(source_keys)
    candidates = {k[:-len("conv1.weight")] for k in source if k.endswith("conv1.weight")} or {""}
    prefix = min(candidates, key=lambda p: (-sum(p + k in source for k in written), len(p)))
    return sorted(source - {prefix + k for k in written})
