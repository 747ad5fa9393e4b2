"""Corruption names, their groups and the severity levels, as explicit named lists.

The order of ``benchmark`` and ``holdout`` is the ImageNet-C order (Hendrycks & Dietterich, 2019),
which is also the order of imagecorruptions' ``corruption_tuple``; reports rely on it.
"""
from __future__ import annotations

from typing import Iterable

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

NOISE = ("gaussian_noise", "shot_noise", "impulse_noise")
BLUR = ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur")
WEATHER = ("snow", "frost", "fog", "brightness")
DIGITAL = ("contrast", "elastic_transform", "pixelate", "jpeg_compression")
HOLDOUT = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
BENCHMARK = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
ALL = BENCHMARK + HOLDOUT

CORRUPTION_GROUPS: dict[str, tuple[str, ...]] = {
    "benchmark": BENCHMARK,
    "holdout": HOLDOUT,
    "all": ALL,
    "noise": NOISE,
    "blur": BLUR,
    "weather": WEATHER,
    "digital": DIGITAL,
}

# Spellings that mean "no corruption at all" (a clean-only run).
_NONE_SPELLINGS = ("none",)


def get_corruption_names(subset: str = "benchmark") -> list[str]:
    """Return the corruption names of a group, in ImageNet-C order.

    ``subset`` is one of the keys of :data:`CORRUPTION_GROUPS`: ``benchmark`` (the 15 ImageNet-C
    corruptions), ``holdout`` (the 4 validation corruptions), ``all`` (19), ``noise``, ``blur``,
    ``weather``, ``digital``.
    """
    if subset not in CORRUPTION_GROUPS:
        raise ValueError(
            f"unknown corruption group {subset!r}; allowed: {', '.join(CORRUPTION_GROUPS)}"
        )
    return list(CORRUPTION_GROUPS[subset])


def resolve_corruptions(spec: str | Iterable[str] | None) -> list[str]:
    """Expand a corruption specification into a list of corruption names.

    ``spec`` may be a group name (``"benchmark"``), a corruption name (``"fog"``), a
    comma-separated string of those (``"noise,fog"``), or a list mixing them. Duplicates are
    dropped, first occurrence wins. ``None`` or ``"none"`` gives ``[]``.
    Raises ``ValueError`` listing the allowed values for anything else.
    """
    if spec is None:
        return []
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"corruption spec items must be strings, got {item!r}")
        item = item.strip()
        if item.lower() in _NONE_SPELLINGS:
            continue
        if item in CORRUPTION_GROUPS:
            expanded = CORRUPTION_GROUPS[item]
        elif item in ALL:
            expanded = (item,)
        else:
            raise ValueError(
                f"unknown corruption or group {item!r}; allowed groups: "
                f"{', '.join(CORRUPTION_GROUPS)}; allowed corruptions: {', '.join(ALL)}; or 'none'"
            )
        names.extend(name for name in expanded if name not in names)
    return names
