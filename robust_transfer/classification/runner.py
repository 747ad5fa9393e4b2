"""One transfer run end to end: data, model, freezing, fine-tuning, robustness evaluation."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from ..datasets.cifar import get_layout, load_cifar
from .config import TransferConfig
from .data import ArrayImageDataset, select_subset, test_transform, train_transform
from .evaluation import evaluate_robustness
from .freeze import apply_freeze_level, frozen_norm_layers
from .models import build_transfer_model, normalization_stats
from .training import CHECKPOINT_BEST, CHECKPOINT_LATEST, fit, resolve_device


def _evaluation_checkpoint(config: TransferConfig) -> Path:
    choice = config.eval_checkpoint
    if choice in ("latest", "best"):
        path = config.exp_dir / (CHECKPOINT_LATEST if choice == "latest" else CHECKPOINT_BEST)
    else:
        path = Path(choice)
    if not path.is_file():
        raise FileNotFoundError(
            f"no fine-tuned checkpoint to evaluate at {path} (--eval-checkpoint {choice}); "
            "train first (without --eval-only) or point --eval-checkpoint at a checkpoint file")
    return path


def _backbone_label(config: TransferConfig) -> str:
    if config.backbone_name:
        return config.backbone_name
    return Path(config.model_path).stem if config.model_path else "random-init"


def run_transfer(config: TransferConfig) -> dict:
    """Fine-tune (unless ``eval_only``) and evaluate as ``config`` says.

    Returns ``{"exp_dir", "checkpoint", "results" (path or None), "training" (fit summary or None)}``.
    """
    config.validate()
    device = resolve_device(config.device)
    num_classes = get_layout(config.dataset).num_classes
    test = load_cifar(config.data, config.dataset, train=False)  # fails early if data is missing
    training = None
    if not config.eval_only:
        train = load_cifar(config.data, config.dataset, train=True)
        indices = select_subset(len(train), config.subset, config.seed)
        mean, std = normalization_stats(config.normalization, config.dataset)
        torch.manual_seed(config.seed)  # the new head's initialisation
        model, source_format = build_transfer_model(
            config.arch, num_classes, model_path=config.model_path, model_format=config.model_format,
            additional_hidden=config.additional_hidden, mean=mean, std=std,
            weights_only=not config.unsafe_load)
        trainable = apply_freeze_level(model.model, config.arch, config.freeze_level)
        frozen_norms = frozen_norm_layers(model.model, config.arch, config.freeze_level) \
            if config.freeze_bn_stats else []
        print(f"[transfer] {config.arch} from {config.model_path or 'random init'}"
              f"{f' ({source_format} layout)' if source_format else ''}; {config.transfer_mode}: "
              f"{len(trainable)} trainable tensors; {len(indices)} training images on {device}",
              file=sys.stderr)
        train_set = ArrayImageDataset(train.images[indices], train.labels[indices],
                                      train_transform(config.input_size))
        test_set = ArrayImageDataset(test.images, test.labels, test_transform(config.input_size))
        training = fit(config, model, [f"model.{name}" for name in trainable], frozen_norms,
                       train_set, test_set, device,
                       extra={"num_classes": num_classes, "normalization_mean": list(mean),
                              "normalization_std": list(std), "source_format": source_format})
    checkpoint = None
    results = None
    if config.eval_only or config.eval_corruptions:
        checkpoint = _evaluation_checkpoint(config)
        results = evaluate_robustness(config, checkpoint, test, device,
                                      backbone=_backbone_label(config))
    return {"exp_dir": config.exp_dir, "checkpoint": checkpoint, "results": results,
            "training": training}
