"""PRIME's settings without importing torch: defaults, the ImageNet preset, validation and the
command-line flags shared by every entry point (``robust-models-transfer/src/main.py``,
``robust-transfer prime-preview``).

Every constructor argument of :class:`robust_transfer.augment.PRIME` is listed once, in
:data:`PARAMETERS`; the flags (``--prime-width``, ``--prime-color-cut``, ...) and their help
texts are generated from that table.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Mapping

FILTER_PADDINGS = ("reflect", "replicate", "circular", "zeros")


@dataclass(frozen=True)
class Parameter:
    """One constructor argument of PRIME: name, default (the transfer experiments'), type, help."""

    name: str
    default: Any
    kind: type
    help: str
    optional: bool = False  # None allowed

    @property
    def flag(self) -> str:
        return "--prime-" + self.name.replace("_", "-")


#: The constructor arguments of PRIME, with the defaults of the PRIME-during-transfer
#: experiments of Yamada & Otani (2022): colour + random filter, width 3, depth 1, no diffeo.
PARAMETERS: tuple[Parameter, ...] = (
    Parameter("width", 3, int, "number of augmentation chains mixed (0 = identity)"),
    Parameter("depth", 1, int, "maximum chain length; each chain of each image draws its length "
                               "uniformly in 1..depth"),
    Parameter("dirichlet_alpha", 1.0, float, "concentration of the Dirichlet weights over the chains"),
    Parameter("mix_alpha", 1.0, float, "Beta(a, a) weight of the clean image in the final mix"),
    Parameter("color", True, bool, "use the smooth random colour primitive"),
    Parameter("color_cut", 500, int, "highest frequency K of the colour curves (sin(k*pi*x), "
                                     "k <= K); each image draws its band's top frequency in 1..K"),
    Parameter("color_temperature", 0.05, float, "maximum standard deviation T of the colour "
                                                "curves' Fourier coefficients (drawn in "
                                                "[color_temperature_min, T] per image)"),
    Parameter("color_temperature_min", 0.0, float, "minimum of that standard deviation"),
    Parameter("color_bandwidth", 20, int, "number of consecutive frequencies in a colour curve "
                                          "(None: all of 1..top)", optional=True),
    Parameter("filter", True, bool, "use the random filter primitive"),
    Parameter("filter_kernel_size", 3, int, "side of the random convolution kernel (odd)"),
    Parameter("filter_sigma", 4.0, float, "maximum strength sigma of the kernel's random part "
                                          "(taps ~ N(0, (s/k)^2), s drawn in [sigma_min, sigma])"),
    Parameter("filter_sigma_min", 0.0, float, "minimum of that strength"),
    Parameter("filter_padding", "reflect", str, "border handling of the filter: "
                                                + ", ".join(FILTER_PADDINGS)),
    Parameter("filter_per_channel", False, bool, "draw one kernel per channel instead of one per image"),
    Parameter("diffeo", False, bool, "use the random diffeomorphism primitive"),
    Parameter("diffeo_cut", 500, int, "highest cut-off frequency of the displacement field "
                                      "(each image draws its cut-off in diffeo_cut_min..this)"),
    Parameter("diffeo_cut_min", 2, int, "lowest cut-off frequency of the displacement field"),
    Parameter("diffeo_temperature", None, float, "temperature of the displacement field (None: "
                                                 "drawn per image in the natural range of Petrini "
                                                 "et al. for its size and cut-off)", optional=True),
    Parameter("diffeo_max_displacement", 0.125, float, "hard bound on the displacement, as a "
                                                       "fraction of the image side"),
)
PARAMETER_NAMES: tuple[str, ...] = tuple(p.name for p in PARAMETERS)
TRANSFER_DEFAULTS: dict[str, Any] = {p.name: p.default for p in PARAMETERS}

#: The PRIME paper's ImageNet settings (Modas, Rade et al., ECCV 2022, ResNet-50 on ImageNet):
#: all three primitives, stochastic chain depth up to 3; colour cut-off 500, T 0.05, band of 20;
#: filter 3x3, sigma 4; diffeomorphism cut-off 2..500 with the temperature drawn in the natural
#: range of Petrini et al. (2021).
IMAGENET_PRESET: dict[str, Any] = {**TRANSFER_DEFAULTS, "depth": 3, "diffeo": True,
                                   "diffeo_cut": 500, "diffeo_cut_min": 2}
PRESETS: dict[str, dict[str, Any]] = {"transfer": TRANSFER_DEFAULTS, "imagenet": IMAGENET_PRESET}


def resolve_params(params: Mapping[str, Any] | None = None, *, preset: str | None = None) -> dict:
    """All constructor arguments: the preset's (default ``transfer``) updated by ``params``.

    ``params`` may itself hold a ``preset`` key. Unknown names raise ValueError listing the
    allowed ones.
    """
    params = dict(params or {})
    preset = params.pop("preset", None) or preset or "transfer"
    if preset not in PRESETS:
        raise ValueError(f"unknown PRIME preset {preset!r}; allowed: {', '.join(PRESETS)}")
    unknown = sorted(set(params) - set(PARAMETER_NAMES))
    if unknown:
        raise ValueError(f"unknown PRIME parameter(s) {', '.join(unknown)}; allowed: "
                         f"{', '.join(PARAMETER_NAMES)}")
    return {**PRESETS[preset], **params}


def validate_params(params: Mapping[str, Any]) -> dict:
    """Check every value; return the complete, normalised settings (ValueError on bad input)."""
    p = resolve_params(params)

    def integer(name: str, low: int) -> None:
        value = p[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"PRIME {name} must be an integer >= {low}, got {value!r}")

    def number(name: str, *, positive: bool = False) -> None:
        value = p[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 \
                or (positive and value == 0):
            raise ValueError(f"PRIME {name} must be a number {'>' if positive else '>='} 0, "
                             f"got {value!r}")
        p[name] = float(value)

    for name in ("color", "filter", "diffeo", "filter_per_channel"):
        if not isinstance(p[name], bool):
            raise ValueError(f"PRIME {name} must be True or False, got {p[name]!r}")
    integer("width", 0)
    integer("depth", 1)
    integer("color_cut", 1)
    if p["color_bandwidth"] is not None:
        integer("color_bandwidth", 1)
    integer("filter_kernel_size", 1)
    if p["filter_kernel_size"] % 2 == 0:
        raise ValueError(f"PRIME filter_kernel_size must be odd, got {p['filter_kernel_size']}")
    integer("diffeo_cut_min", 2)
    integer("diffeo_cut", p["diffeo_cut_min"])
    number("dirichlet_alpha", positive=True)
    number("mix_alpha", positive=True)
    number("color_temperature")
    number("color_temperature_min")
    number("filter_sigma")
    number("filter_sigma_min")
    number("diffeo_max_displacement", positive=True)
    if p["diffeo_temperature"] is not None:
        number("diffeo_temperature")
    if p["color_temperature_min"] > p["color_temperature"]:
        raise ValueError("PRIME color_temperature_min must not exceed color_temperature")
    if p["filter_sigma_min"] > p["filter_sigma"]:
        raise ValueError("PRIME filter_sigma_min must not exceed filter_sigma")
    if p["filter_padding"] not in FILTER_PADDINGS:
        raise ValueError(f"PRIME filter_padding must be one of {', '.join(FILTER_PADDINGS)}, "
                         f"got {p['filter_padding']!r}")
    if p["width"] > 0 and not (p["color"] or p["filter"] or p["diffeo"]):
        raise ValueError("PRIME needs at least one primitive (color, filter, diffeo) when "
                         "width > 0; use width=0 or enabled=False for the identity")
    return p


def stable_seed(*parts: Any) -> int:
    """A 63-bit seed from JSON-able parts via SHA-256 (same value in every process and machine;
    Python's salted ``hash()`` is not used)."""
    text = json.dumps(["robust_transfer.augment/v1", *parts], separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


# ----------------------------------------------------------------------------- command line


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


_EXPLICIT_NONE = "none"


def _optional(kind: type):
    def parse(text: str):
        if text.strip().lower() in ("none", "null", ""):
            return _EXPLICIT_NONE  # told apart from "flag not given" (None)
        return kind(text)
    parse.__name__ = kind.__name__
    return parse


def add_prime_arguments(parser: argparse.ArgumentParser | Any, *, switch: bool = True) -> None:
    """Add ``--prime`` (when ``switch``), ``--prime-preset`` and one ``--prime-<name>`` flag per
    PRIME parameter to ``parser`` (a parser or an argument group). Unset flags leave no
    attribute, so :func:`prime_params_from_args` only overrides what was given."""
    if switch:
        parser.add_argument("--prime", action="store_true",
                            help="PRIME augmentation (Modas, Rade et al. 2022) on training batches, "
                                 "before the normalisation; never at test time")
    parser.add_argument("--prime-preset", default=argparse.SUPPRESS, choices=tuple(PRESETS),
                        help="PRIME defaults: 'transfer' (colour + filter, width 3, depth 1: the "
                             "study's PRIME-during-transfer setting; the default) or 'imagenet' "
                             "(the PRIME paper's: + diffeomorphism, depth up to 3)")
    for p in PARAMETERS:
        kind = _bool if p.kind is bool else (_optional(p.kind) if p.optional else p.kind)
        default_text = f"default: {p.default}"
        if IMAGENET_PRESET[p.name] != p.default:
            default_text += f"; imagenet preset: {IMAGENET_PRESET[p.name]}"
        # SUPPRESS: an unset flag leaves no attribute (and no misleading "default: None")
        parser.add_argument(p.flag, dest=f"prime_{p.name}", type=kind, default=argparse.SUPPRESS,
                            choices=FILTER_PADDINGS if p.name == "filter_padding" else None,
                            metavar=p.kind.__name__.upper() if p.kind is not bool else "BOOL",
                            help=f"{p.help} ({default_text})")


def prime_params_from_args(args: argparse.Namespace) -> dict:
    """The PRIME parameters given on the command line (preset under ``preset``)."""
    params = {p.name: getattr(args, f"prime_{p.name}") for p in PARAMETERS
              if getattr(args, f"prime_{p.name}", None) is not None}
    # optional parameters: an explicit 'none' on the command line means None
    params = {k: (None if v is _EXPLICIT_NONE else v) for k, v in params.items()}
    if getattr(args, "prime_preset", None):
        params["preset"] = args.prime_preset
    return params
