"""The settings of one transfer run: robust-models-transfer's flags plus ours, validated."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ..backbones.formats import SUPPORTED_FORMATS
from ..datasets.cifar import LAYOUTS
from .freeze import FREEZE_LEVELS
from .models import list_archs

#: The paper's CIFAR-10 recipe (Yamada & Otani 2022, after Salman et al. 2020).
PAPER_RECIPE = {"epochs": 150, "lr": 0.01, "step_lr": 30, "batch_size": 64, "weight_decay": 5e-4}


@dataclass
class TransferConfig:
    """One run. Field names are the command-line flags with ``-`` replaced by ``_``; the
    defaults are the paper's recipe (see ``robust-models-transfer/README.md``)."""

    arch: str = "resnet50"
    dataset: str = "cifar10"
    data: str = "data"
    out_dir: str = "outdir"
    exp_name: str = "transfer"
    epochs: int = PAPER_RECIPE["epochs"]
    lr: float = PAPER_RECIPE["lr"]
    step_lr: int = PAPER_RECIPE["step_lr"]
    step_lr_gamma: float = 0.1
    batch_size: int = PAPER_RECIPE["batch_size"]
    weight_decay: float = PAPER_RECIPE["weight_decay"]
    momentum: float = 0.9
    workers: int = 4
    model_path: str | None = None
    model_format: str | None = None
    unsafe_load: bool = False
    backbone_name: str | None = None
    resume: bool = False
    freeze_level: int = -1
    freeze_bn_stats: bool = False
    subset: int | None = None
    additional_hidden: int = 0
    normalization: str = "dataset"
    input_size: int = 224
    seed: int = 0
    device: str = "auto"
    log_iters: int = 5
    save_ckpt_iters: int = -1
    progress: bool = True
    eval_only: bool = False
    eval_corruptions: str | None = None
    severities: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])
    cifar_c_dir: str | None = None
    corruption_backend: str = "numpy"
    corruption_seed: int | None = None
    eval_checkpoint: str = "latest"
    eval_subset: int | None = None
    eval_batch_size: int | None = None
    results: str | None = None
    prime: bool = False
    #: PRIME parameters given with --prime-<name> flags (and ``preset``); the rest are defaults
    prime_params: dict = field(default_factory=dict)
    prime_seed: int | None = None

    @property
    def exp_dir(self) -> Path:
        """``<out_dir>/<exp_name>``: checkpoints, logs and results of this run."""
        return Path(self.out_dir) / self.exp_name

    @property
    def prime_settings(self) -> dict | None:
        """The complete PRIME settings of training (None without ``prime``)."""
        if not self.prime:
            return None
        from ..augment.params import validate_params

        return validate_params(self.prime_params)

    @property
    def transfer_mode(self) -> str:
        """``fixed-feature`` (level 4), ``full-network`` (-1) or ``partial-freeze-<k>``."""
        return {4: "fixed-feature", -1: "full-network"}.get(self.freeze_level,
                                                            f"partial-freeze-{self.freeze_level}")

    def validate(self) -> "TransferConfig":
        """Raise ValueError naming the first bad setting; return self."""
        if self.arch not in list_archs():
            raise ValueError(f"unknown --arch {self.arch!r}; allowed: {', '.join(list_archs())}")
        if self.dataset not in LAYOUTS:
            raise ValueError(f"unknown --dataset {self.dataset!r}; allowed: {', '.join(LAYOUTS)}")
        if self.freeze_level not in FREEZE_LEVELS:
            raise ValueError(f"--freeze-level must be one of {', '.join(map(str, FREEZE_LEVELS))}, "
                             f"got {self.freeze_level}")
        if self.model_format is not None and self.model_format not in SUPPORTED_FORMATS:
            raise ValueError(f"unknown --model-format {self.model_format!r}; allowed: "
                             f"{', '.join(SUPPORTED_FORMATS)}")
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "step_lr": self.step_lr,
                    "input_size": self.input_size, "log_iters": self.log_iters}
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if self.lr <= 0 or self.weight_decay < 0 or self.momentum < 0 or self.workers < 0:
            raise ValueError("--lr must be > 0; --weight-decay, --momentum, --workers >= 0")
        if self.additional_hidden < 0:
            raise ValueError(f"--additional-hidden must be >= 0, got {self.additional_hidden}")
        if self.normalization not in ("dataset", "imagenet"):
            raise ValueError(f"--normalization must be 'dataset' or 'imagenet', got {self.normalization!r}")
        if self.corruption_backend not in ("numpy", "torch"):
            raise ValueError(f"--corruption-backend must be numpy or torch, got {self.corruption_backend!r}")
        bad = [s for s in self.severities if not 1 <= int(s) <= 5]
        if bad:
            raise ValueError(f"--severities must be in 1..5 (the clean cell is always evaluated), got {bad}")
        if self.eval_subset is not None and self.eval_subset < 1:
            raise ValueError(f"--eval-subset must be >= 1, got {self.eval_subset}")
        if self.prime:
            from ..augment.params import validate_params

            validate_params(self.prime_params)  # ValueError naming the bad PRIME setting
        elif self.prime_params:
            raise ValueError("PRIME parameters are given but PRIME is off: add --prime")
        if self.cifar_c_dir and not self.eval_corruptions:
            raise ValueError("--cifar10c-dir is given but --eval-corruptions is not: name the "
                             "corruptions to evaluate (e.g. --eval-corruptions benchmark)")
        return self

    def to_dict(self) -> dict:
        """Plain values only (stored in checkpoints loaded with weights_only=True)."""
        return {k: (list(v) if isinstance(v, tuple) else dict(v) if isinstance(v, dict) else v)
                for k, v in dataclasses.asdict(self).items()}
