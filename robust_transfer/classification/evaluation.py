"""Clean and corrupted accuracy of a fine-tuned classifier, cell by cell, into the shared
results schema (:mod:`robust_transfer.results`) through :func:`robust_transfer.grid.run_grid`.

Two sources of corrupted test images:

* ``cifar-c`` -- the released CIFAR-10-C (or CIFAR-100-C) files (``--cifar10c-dir``). They were
  made with Hendrycks & Dietterich's *CIFAR-sized* corruption parameters, which differ from
  ImageNet-C's; numbers in this mode are comparable with published CIFAR-10-C results.
* ``on-the-fly`` -- our corruption library applied to the 32x32 test images while loading,
  with the *ImageNet-C* parameters (the same corruptions the detection and segmentation tasks
  use). Test image ``i`` is corrupted with ``key=i`` and the corruption seed, so every run,
  worker and machine sees the same corrupted bytes.

In both modes the corruption hits the native 32x32 image, before the test transform upsamples
it (as for the released files). The model is built once and evaluated on every cell.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from ..datasets.cifar import ImageArrays, cifar_c_corruptions, load_cifar_c
from ..grid import Cell, build_cells, run_grid
from ..results import new_results
from .config import TransferConfig
from .data import ArrayImageDataset, make_loader, test_transform
from .models import NormalizedClassifier, create_model, replace_head
from .training import accuracy_and_loss, load_run_checkpoint


def load_finetuned_model(path: str | Path) -> tuple[NormalizedClassifier, dict]:
    """Rebuild the model a fine-tuning checkpoint was saved from; returns ``(model, checkpoint)``."""
    checkpoint = load_run_checkpoint(path)
    saved = checkpoint["config"]
    net = create_model(saved["arch"], 1000)
    replace_head(net, saved["arch"], int(checkpoint["num_classes"]), int(saved["additional_hidden"]))
    model = NormalizedClassifier(net, checkpoint["normalization_mean"], checkpoint["normalization_std"])
    model.load_state_dict(checkpoint["model"])
    return model, checkpoint


def corruption_source(config: TransferConfig) -> str:
    """``cifar-c`` when a CIFAR-C folder is given, else ``on-the-fly``."""
    return "cifar-c" if config.cifar_c_dir else "on-the-fly"


def default_results_path(config: TransferConfig) -> Path:
    """``<exp_dir>/robustness_<source>.json`` (one file per corruption source)."""
    if corruption_source(config) == "cifar-c":
        return config.exp_dir / f"robustness_{config.dataset}-c.json"
    return config.exp_dir / f"robustness_onthefly_{config.corruption_backend}.json"


def _recipe(config: TransferConfig) -> str:
    # Identifies the training recipe in the results' identity ("config" field): resuming an
    # evaluation into a file made with another recipe is refused.
    keys = ("arch", "dataset", "freeze_level", "freeze_bn_stats", "additional_hidden", "epochs",
            "lr", "step_lr", "step_lr_gamma", "batch_size", "weight_decay", "momentum", "subset",
            "normalization", "input_size", "seed")
    recipe = "robust-models-transfer " + " ".join(f"{k}={getattr(config, k)}" for k in keys)
    if config.prime:  # (absent without PRIME: identities of earlier results files are unchanged)
        import json

        recipe += " prime=" + json.dumps(config.prime_settings, sort_keys=True, separators=(",", ":"))
    return recipe


def evaluate_robustness(config: TransferConfig, checkpoint_path: str | Path, test: ImageArrays,
                        device: torch.device, *, backbone: str | None = None) -> Path:
    """Evaluate the clean cell and ``config.eval_corruptions`` x ``config.severities`` for the
    model in ``checkpoint_path``; write (and resume) the results file. Returns its path."""
    source = corruption_source(config)
    corruptions = config.eval_corruptions or "none"
    cells = build_cells(corruptions, [0, *config.severities])
    corrupted_names = sorted({c.corruption for c in cells if not c.is_clean})
    if source == "cifar-c":
        available = set(cifar_c_corruptions(config.cifar_c_dir))
        missing = [name for name in corrupted_names if name not in available]
        if missing:
            raise FileNotFoundError(
                f"--cifar10c-dir {config.cifar_c_dir} has no {', '.join(missing)} "
                f"(available: {', '.join(sorted(available)) or 'none'})")

    if source == "on-the-fly" and corrupted_names:
        # fail here with the library's message rather than inside a data-loader worker
        from ..corruptions import corrupt

        corrupt(np.zeros((32, 32, 3), np.uint8), corrupted_names[0], 1,
                backend=config.corruption_backend)

    model, checkpoint = load_finetuned_model(checkpoint_path)
    model.to(device)
    indices = np.arange(len(test) if config.eval_subset is None else min(config.eval_subset, len(test)))
    images, labels = test.images[indices], test.labels[indices]
    transform = test_transform(config.input_size)
    corruption_seed = config.seed if config.corruption_seed is None else config.corruption_seed
    eval_batch = config.eval_batch_size or config.batch_size

    def dataset_for(cell: Cell) -> ArrayImageDataset:
        if cell.is_clean:
            return ArrayImageDataset(images, labels, transform, keys=indices)
        if source == "cifar-c":
            corrupted = load_cifar_c(config.cifar_c_dir, cell.corruption, cell.severity, config.dataset)
            if len(corrupted) != len(test) or not np.array_equal(corrupted.labels, test.labels):
                raise ValueError(
                    f"{config.cifar_c_dir}/{cell.corruption}.npy holds {len(corrupted)} images per "
                    f"severity whose labels do not match the {len(test)} test images of "
                    f"{config.data}: is it the -C folder of this data set?")
            return ArrayImageDataset(corrupted.images[indices], labels, transform, keys=indices)
        return ArrayImageDataset(images, labels, transform, keys=indices,
                                 corruption=(cell.corruption, cell.severity, corruption_seed,
                                             config.corruption_backend))

    def evaluate_cell(cell: Cell) -> dict[str, float]:
        loader = make_loader(dataset_for(cell), batch_size=eval_batch, shuffle=False,
                             workers=config.workers, device=str(device))
        top1, _ = accuracy_and_loss(model, loader, device, desc=str(cell), progress=config.progress)
        return {"top1": top1}

    subset_tag = "" if config.eval_subset is None else f"[:{len(indices)}]"
    dataset_name = (f"{config.dataset}-c{subset_tag}" if source == "cifar-c"
                    else f"{config.dataset}-test{subset_tag}+library-corruptions")
    results = new_results(
        task="classification", model=config.exp_name, backbone=backbone or config.backbone_name,
        transfer_mode=config.transfer_mode, config=_recipe(config), checkpoint=str(Path(checkpoint_path).resolve()),
        dataset=dataset_name, seed=corruption_seed if source == "on-the-fly" else config.seed,
        backend=config.corruption_backend if source == "on-the-fly" else "cifar-c-files",
        metrics=["top1"], primary_metric="top1", metric_scale=100.0,
        extra={"corruption_source": source,
               "cifar_c_dir": str(Path(config.cifar_c_dir).resolve()) if config.cifar_c_dir else None,
               "corruption_parameters": "CIFAR-10-C (Hendrycks & Dietterich)" if source == "cifar-c"
               else "ImageNet-C (robust_transfer.corruptions)",
               "input_size": config.input_size, "test_images": len(indices),
               "checkpoint_epoch": int(checkpoint["epoch"]), "arch": config.arch,
               "freeze_level": config.freeze_level, "model_path": config.model_path})
    path = Path(config.results) if config.results else default_results_path(config)
    results = run_grid(cells, evaluate_cell, results, path, resume=config.resume,
                       images_per_cell=len(indices), progress=config.progress)
    clean = results["cells"]["clean"]["0"]["top1"]
    print(f"[eval] {len(cells)} cells, clean top1 {clean:.2f}%; results: {path}", file=sys.stderr)
    return path
