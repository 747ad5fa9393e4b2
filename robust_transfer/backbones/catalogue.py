"""The catalogue of the study's ImageNet backbones: one entry per backbone id.

Each entry says what the backbone is (architecture, label, source project), where its published
checkpoint comes from (URL, sha256 where known, the file name it is saved under, its layout --
a name of :data:`.formats.SUPPORTED_FORMATS`) and which converted files the mmdet and mmseg
configs load. The suites (``configs/*.yaml``) refer to it by id (the suite loader fills every
fact an entry leaves out); the task configs name the same files, and a test keeps them in
agreement with this table.

Look a backbone up with :func:`get_backbone`, list them with :func:`list_backbones`, and add
your own with :func:`register_backbone` -- or once and for all in a ``backbones:`` YAML file
(:func:`load_user_backbones`, written by ``robust-transfer backbone add``; docs/own-backbone.md)::

    backbones:
      my_r18:                       # the id used by converters, suites and reports
        arch: resnet18              # a name of backbones.classification.BACKBONE_ARCHS
        checkpoint: my_r18.pth      # relative to this file's folder, or absolute
        format: torchvision         # a name of backbones.formats.SUPPORTED_FORMATS
        sha256: 0123...             # optional: refused at conversion when the file differs
        label: My ResNet-18         # optional: the name in tables and plots

sha256: no digest of a published file has been checked on this project, so every entry has
``None`` rather than a number copied from memory. (torchvision's file names carry the first
eight hex digits of their sha256: ``resnet50-0676ba61.pth``.)

This module imports nothing heavy, so planners and command lines can read it without torch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Where the converted backbone files live, relative to the repository root.
MMDET_CHECKPOINT_DIR = "mmdetection/checkpoints"
MMSEG_CHECKPOINT_DIR = "mmsegmentation/checkpoints"
#: The segmentation converter (takes ``--backbone <id>``).
MMSEG_CONVERTER = "mmsegmentation/tools/model_converters/imagenet2mmseg.py"
_MMDET_CONVERTERS = "mmdetection/tools/model_converters"
# Checkpoint format -> the mmdet converter tool that reads it; resnet2mmdet detects the layout.
_MMDET_CONVERTER_BY_FORMAT = {"torchvision": "torchvision2mmdet.py", "ant": "ant2mmdet.py",
                              "deepaugment": "deepaug2mmdet.py", "prime": "prime2mmdet.py",
                              "robustness": "robustness2mmdet.py", "swin": "swin2mmdet.py"}


def mmdet_converter(fmt: str) -> str:
    """The mmdet converter tool for checkpoints of layout ``fmt``, relative to the repository
    root (``resnet2mmdet.py``, which detects the layout, for formats without a tool of their own)."""
    return f"{_MMDET_CONVERTERS}/{_MMDET_CONVERTER_BY_FORMAT.get(fmt, 'resnet2mmdet.py')}"


@dataclass(frozen=True)
class Backbone:
    """One ImageNet backbone: its published checkpoint and the files converted from it."""

    id: str
    arch: str                       # torchvision architecture the weights fit
    format: str                     # layout of the published file (a reader of .formats)
    checkpoint: str                 # file name of the ImageNet checkpoint (in --backbone-dir)
    url: str | None = None          # where to download it (the project page when no direct link)
    sha256: str | None = None       # of the published file; None where not known
    label: str | None = None        # the name in tables and plots
    source: str | None = None       # the project and paper it comes from
    mmdet_file: str | None = None   # converted file under MMDET_CHECKPOINT_DIR
    mmseg_file: str | None = None   # converted file under MMSEG_CHECKPOINT_DIR

    @property
    def mmdet_path(self) -> str | None:
        """The converted mmdet file, relative to the repository root."""
        return f"{MMDET_CHECKPOINT_DIR}/{self.mmdet_file}" if self.mmdet_file else None

    @property
    def mmseg_path(self) -> str | None:
        """The converted mmseg file, relative to the repository root."""
        return f"{MMSEG_CHECKPOINT_DIR}/{self.mmseg_file}" if self.mmseg_file else None

    @property
    def mmdet_converter(self) -> str:
        """The mmdet converter tool for this backbone's layout, relative to the repository root."""
        return mmdet_converter(self.format)


_ROBUST_MODELS_TRANSFER = ("microsoft/robust-models-transfer (Salman et al., NeurIPS 2020): "
                           "robustness-library checkpoint, download link in the project's README")


def _l2_robust(eps: str) -> Backbone:
    return Backbone(f"l2_eps{eps}", "resnet50", "robustness", f"resnet50_l2_eps{eps}.ckpt",
                    url="https://github.com/microsoft/robust-models-transfer",
                    label=f"L2-robust ResNet-50, eps {eps}", source=_ROBUST_MODELS_TRANSFER,
                    mmdet_file=f"resnet50_l2_eps{eps}_mmdet.pth",
                    mmseg_file=f"resnet50_l2_eps{eps}_mmseg.pth")


_STUDY = (
    Backbone("regular", "resnet50", "torchvision", "resnet50-0676ba61.pth",
             url="https://download.pytorch.org/models/resnet50-0676ba61.pth",
             label="Regular ResNet-50 (torchvision)",
             source="torchvision ImageNet weights IMAGENET1K_V1 (what mmengine calls torchvision://resnet50)",
             mmdet_file="resnet50_regular_mmdet.pth", mmseg_file="resnet50_regular_mmseg.pth"),
    Backbone("ant", "resnet50", "ant", "ANT_Model.pth",
             url="https://bitbucket.org/EvgeniaAR/game-of-noise-pretrained-models/downloads/ANT_Model.pth",
             label="ANT (adversarial noise training)",
             source="bethgelab/game-of-noise (Rusak et al., ECCV 2020), Models/download_models.sh",
             mmdet_file="resnet50_ant_mmdet.pth", mmseg_file="resnet50_ant_mmseg.pth"),
    Backbone("deepaug_augmix", "resnet50", "deepaugment", "deepaugment_and_augmix.pth.tar",
             url="https://github.com/hendrycks/imagenet-r", label="DeepAugment+AugMix",
             source="hendrycks/imagenet-r (Hendrycks et al., ICCV 2021): the DeepAugment+AugMix "
                    "ResNet-50 (Google Drive link in the project's README)",
             mmdet_file="resnet50_deepaug_augmix_mmdet.pth",
             mmseg_file="resnet50_deepaug_augmix_mmseg.pth"),
    Backbone("prime", "resnet50", "prime", "resnet50_prime_imagenet.pth",
             url="https://zenodo.org/record/5801872", label="PRIME (ResNet-50, no JSD)",
             source="amodas/PRIME-augmentations (Modas, Rade et al., ECCV 2022): the ImageNet "
                    "ResNet-50 trained with PRIME without JSD, from the Zenodo record linked in "
                    "its README; save it under this name",
             mmdet_file="resnet50_prime_mmdet.pth", mmseg_file="resnet50_prime_mmseg.pth"),
    *(_l2_robust(eps) for eps in ("0.1", "1", "3", "5")),
    Backbone("swin_t", "swin_t", "swin", "swin_tiny_patch4_window7_224.pth",
             url="https://github.com/SwinTransformer/storage/releases/download/v1.0.0/"
                 "swin_tiny_patch4_window7_224.pth",
             label="Swin-T (ImageNet-1K)",
             source="microsoft/Swin-Transformer (Liu et al., ICCV 2021), release v1.0.0",
             mmdet_file="swin_tiny_patch4_window7_224_mmdet.pth",
             mmseg_file="swin_tiny_patch4_window7_224_mmseg.pth"),
)

_CATALOGUE: dict[str, Backbone] = {backbone.id: backbone for backbone in _STUDY}


def list_backbones() -> list[str]:
    """The ids of every catalogued backbone, the study's first, in registration order."""
    return list(_CATALOGUE)


def get_backbone(backbone_id: str) -> Backbone:
    """The catalogue entry of ``backbone_id``; a ValueError listing the known ids otherwise."""
    try:
        return _CATALOGUE[backbone_id]
    except (KeyError, TypeError):
        raise ValueError(f"unknown backbone {backbone_id!r}; known: {', '.join(_CATALOGUE)}") from None


def register_backbone(backbone_id: str, arch: str, checkpoint: str, format: str, *,
                      url: str | None = None, sha256: str | None = None, label: str | None = None,
                      source: str | None = None, mmdet_file: str | None = None,
                      mmseg_file: str | None = None) -> Backbone:
    """Add a backbone of your own to the catalogue and return its entry.

    ``arch`` must be an architecture the converters know and ``format`` a registered checkpoint
    layout. The converted files default to ``<arch>_<id>_mmdet.pth`` / ``..._mmseg.pth``.
    """
    from .classification import BACKBONE_ARCHS  # imports torch: only when registering
    from .formats import SUPPORTED_FORMATS

    if not isinstance(backbone_id, str) or not backbone_id or "/" in backbone_id:
        raise ValueError(f"backbone id must be a non-empty name without '/', got {backbone_id!r}")
    if backbone_id in _CATALOGUE:
        raise ValueError(f"backbone {backbone_id!r} is already in the catalogue")
    if arch not in BACKBONE_ARCHS:
        raise ValueError(f"unknown backbone arch {arch!r}; allowed: {', '.join(BACKBONE_ARCHS)}")
    if format not in SUPPORTED_FORMATS:
        raise ValueError(f"unknown checkpoint format {format!r}; allowed: {', '.join(SUPPORTED_FORMATS)}")
    if sha256 is not None and (len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256)):
        raise ValueError(f"sha256 must be 64 lower-case hex digits, got {sha256!r}")
    backbone = _entry(backbone_id, dict(arch=arch, format=format, checkpoint=str(checkpoint),
                                        url=url, sha256=sha256, label=label, source=source,
                                        mmdet_file=mmdet_file, mmseg_file=mmseg_file))
    _CATALOGUE[backbone_id] = backbone
    return backbone


#: Fields of an entry of a user ``backbones:`` file (``arch``, ``checkpoint``, ``format`` required).
USER_FIELDS = ("arch", "checkpoint", "format", "url", "sha256", "label", "source", "mmdet_file",
               "mmseg_file")
_REQUIRED_USER_FIELDS = ("arch", "checkpoint", "format")


def read_user_backbones(path: str | os.PathLike) -> dict[str, dict]:
    """The entries of a user ``backbones:`` YAML file (id -> fields), checked for shape only;
    a missing file reads as empty. Checkpoint paths stay as written."""
    import yaml

    path = Path(path)
    if not path.exists():
        return {}
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a readable YAML file ({type(error).__name__})") from None
    entries = document.get("backbones") if isinstance(document, dict) else None
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: expected a mapping 'backbones: {{id: {{arch, checkpoint, format}}}}'")
    for backbone_id, fields in entries.items():
        if not isinstance(fields, dict):
            raise ValueError(f"{path}: backbone {backbone_id!r} must be a mapping of "
                             f"{', '.join(_REQUIRED_USER_FIELDS)}")
        unknown = sorted(set(fields) - set(USER_FIELDS))
        missing = [f for f in _REQUIRED_USER_FIELDS if not fields.get(f)]
        if unknown or missing:
            problem = f"unknown field {unknown[0]!r}" if unknown else f"no {missing[0]!r}"
            raise ValueError(f"{path}: backbone {backbone_id!r}: {problem}; fields: {', '.join(USER_FIELDS)}")
    return {str(k): dict(v) for k, v in entries.items()}


def load_user_backbones(path: str | os.PathLike) -> list[Backbone]:
    """Register every backbone of a user ``backbones:`` YAML file (see the module docstring) and
    return their entries.

    Relative checkpoint paths are taken from the file's folder and stored absolute. Loading the
    same file twice is harmless; an id that is already catalogued with other facts (or is one
    of the study's) is refused with a one-line ValueError.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"backbones file {path} does not exist")
    loaded = []
    for backbone_id, fields in read_user_backbones(path).items():
        fields = dict(fields)
        checkpoint = Path(os.path.expanduser(str(fields.pop("checkpoint"))))
        fields["checkpoint"] = str(checkpoint if checkpoint.is_absolute() else
                                   (path.parent / checkpoint).resolve())
        if backbone_id in _CATALOGUE:
            again = _CATALOGUE[backbone_id]
            if backbone_id in _STUDY_IDS or _user_fields(again) != _user_fields(_entry(backbone_id, fields)):
                raise ValueError(f"{path}: backbone {backbone_id!r} is already in the catalogue "
                                 "with other facts; choose another id")
            loaded.append(again)
            continue
        try:
            loaded.append(register_backbone(backbone_id, **fields))
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
    return loaded


def _entry(backbone_id: str, fields: dict) -> Backbone:
    arch = fields["arch"]
    return Backbone(backbone_id, **{**fields, "label": fields.get("label") or backbone_id,
                                    "mmdet_file": fields.get("mmdet_file") or f"{arch}_{backbone_id}_mmdet.pth",
                                    "mmseg_file": fields.get("mmseg_file") or f"{arch}_{backbone_id}_mmseg.pth"})


def _user_fields(backbone: Backbone) -> tuple:
    return tuple(getattr(backbone, field) for field in USER_FIELDS)


_STUDY_IDS = frozenset(backbone.id for backbone in _STUDY)
