"""Fine-tuning: SGD with momentum and a step learning rate, per-epoch logs, checkpoints in
robust-models-transfer's names, and exact resume after a kill.

Files in the experiment folder (``<out_dir>/<exp_name>``):

* ``checkpoint.pt.latest`` -- after every epoch; ``checkpoint.pt.best`` -- when the evaluated
  test accuracy improves (evaluation every ``log_iters`` epochs and after the last, as the
  robustness library does); ``<epoch>_checkpoint.pt`` every ``save_ckpt_iters`` epochs.
  Each is a dict of plain values (``model``, ``optimizer``, ``schedule``, ``epoch`` = epochs
  done, ``best_top1``, ``config``, ``log``, ...) loadable with ``weights_only=True``, written
  to a temporary file and renamed, so a kill never leaves half a checkpoint.
* ``log.csv`` / ``log.json`` -- one row per epoch: ``epoch, lr, train_loss, train_top1,
  test_loss, test_top1, best_test_top1, seconds`` (test columns empty between evaluations).

Resuming (``resume=True``) reloads ``checkpoint.pt.latest`` and continues at the next epoch.
Every epoch re-seeds torch's generator and the loader's from ``(seed, epoch)``, so the data
order and augmentations of an epoch do not depend on whether the run was interrupted: a
resumed run ends with the same weights as an uninterrupted one (on the same device).

PRIME (``config.prime``): applied to each training batch on the training device, after the
data loader and before the model (whose first step is the normalisation), so it sees images
in [0, 1]; never to test batches. Its generator is re-seeded every epoch from
``(prime_seed or seed, epoch)``, so resuming stays exact.
"""
from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from .config import TransferConfig
from .data import make_loader
from .freeze import set_train_mode

CHECKPOINT_LATEST = "checkpoint.pt.latest"
CHECKPOINT_BEST = "checkpoint.pt.best"
CHECKPOINT_KIND = "robust-transfer/classification-checkpoint"
LOG_COLUMNS = ("epoch", "lr", "train_loss", "train_top1", "test_loss", "test_top1",
               "best_test_top1", "seconds")
#: Settings a resumed run must share with the checkpoint it continues.
_RESUME_FIELDS = ("arch", "dataset", "freeze_level", "additional_hidden", "normalization",
                  "subset", "seed", "lr", "step_lr", "step_lr_gamma", "batch_size",
                  "weight_decay", "momentum", "input_size", "freeze_bn_stats", "prime",
                  "prime_params", "prime_seed")


def resolve_device(name: str) -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; anything else as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch`` (0-based) of a run seeded with ``seed``."""
    return (int(seed) * 1_000_003 + int(epoch)) % 2**63


def atomic_torch_save(obj, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_logs(exp_dir: Path, rows: Sequence[dict]) -> None:
    """Rewrite ``log.csv`` and ``log.json`` from all rows so far."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in LOG_COLUMNS})
    _atomic_write_text(exp_dir / "log.csv", buffer.getvalue())
    _atomic_write_text(exp_dir / "log.json", json.dumps(list(rows), indent=1) + "\n")


def load_run_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by this module (``weights_only=True``) and check its kind."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or checkpoint.get("kind") != CHECKPOINT_KIND:
        raise ValueError(f"{path} is not a fine-tuning checkpoint of this tool "
                         "(to start from an ImageNet checkpoint, use --model-path)")
    return checkpoint


def _check_resumable(checkpoint: dict, config: TransferConfig, path: Path) -> None:
    saved = checkpoint.get("config", {})
    differing = [f"{k}: {saved.get(k)!r} in the checkpoint, {getattr(config, k)!r} now"
                 for k in _RESUME_FIELDS if k in saved and saved[k] != getattr(config, k)]
    if differing:
        raise ValueError(f"--resume: {path} was trained with other settings ("
                         + "; ".join(differing) + "); use another --exp-name for a new run")


def accuracy_and_loss(model: nn.Module, loader, device: torch.device, *, desc: str = "eval",
                      progress: bool = True) -> tuple[float, float]:
    """Top-1 accuracy (percent) and mean cross-entropy of ``model`` over ``loader``."""
    from tqdm import tqdm

    model.eval()
    correct, total, loss_sum = 0, 0, 0.0
    criterion = nn.CrossEntropyLoss(reduction="sum")
    with torch.no_grad():
        for images, labels in tqdm(loader, desc=desc, leave=False, disable=not progress,
                                   file=sys.stderr, dynamic_ncols=True):
            images, labels = images.to(device, non_blocking=True), labels.to(device)
            logits = model(images)
            loss_sum += float(criterion(logits, labels))
            correct += int((logits.argmax(1) == labels).sum())
            total += len(labels)
    if total == 0:
        raise ValueError("cannot evaluate on an empty data set")
    return 100.0 * correct / total, loss_sum / total


def build_train_augment(config: TransferConfig):
    """The PRIME module of a run (None without ``config.prime``)."""
    if not config.prime:
        return None
    from ..augment import PRIME

    return PRIME.from_config(config.prime_params)


def prime_epoch_seed(config: TransferConfig, epoch: int) -> int:
    """The seed of PRIME's generator in epoch ``epoch`` (0-based)."""
    from ..augment.params import stable_seed

    seed = config.seed if config.prime_seed is None else config.prime_seed
    return stable_seed("classification-prime", int(seed), int(epoch))


def _resume(config: TransferConfig, latest_path, model: nn.Module, optimizer, schedule
            ) -> tuple[int, float | None, list]:
    """(epochs done, best top-1, log rows) of the run to continue; (0, None, []) for a new one."""
    if not latest_path.exists():
        return 0, None, []
    if not config.resume:
        raise ValueError(f"{latest_path} exists: pass --resume to continue that run, or "
                         "choose another --exp-name / --out-dir")
    checkpoint = load_run_checkpoint(latest_path)
    _check_resumable(checkpoint, config, latest_path)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    schedule.load_state_dict(checkpoint["schedule"])
    start_epoch = int(checkpoint["epoch"])
    print(f"[resume] {latest_path}: {start_epoch} of {config.epochs} epochs done", file=sys.stderr)
    return start_epoch, checkpoint.get("best_top1"), list(checkpoint.get("log", []))


def _train_epoch(model: nn.Module, batches, optimizer, augment, device: torch.device,
                 lr: float) -> tuple[float, int, int]:
    """One pass over ``batches`` (a tqdm bar); returns (summed loss, correct, seen)."""
    criterion = nn.CrossEntropyLoss()
    loss_sum, correct, seen = 0.0, 0, 0
    for images, labels in batches:
        images, labels = images.to(device, non_blocking=True), labels.to(device)
        if augment is not None:
            images = augment(images)  # in [0, 1]; the model normalises
        logits = model(images)
        loss = criterion(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(labels)
        correct += int((logits.argmax(1) == labels).sum())
        seen += len(labels)
        batches.set_postfix(loss=f"{loss_sum / seen:.3f}", top1=f"{100 * correct / seen:.1f}",
                            lr=f"{lr:g}")
    batches.close()
    return loss_sum, correct, seen


def fit(config: TransferConfig, model: nn.Module, trainable: list[str], frozen_norms: list[nn.Module],
        train_set, test_set, device: torch.device, *, extra: dict | None = None) -> dict:
    """Train ``model`` (its ``model.``-prefixed ``trainable`` parameters) for ``config.epochs``,
    resuming from ``checkpoint.pt.latest`` when ``config.resume`` and it exists.

    Returns ``{"epoch": epochs done, "best_top1": ..., "latest": path, "best": path or None}``.
    """
    from tqdm import tqdm

    exp_dir = config.exp_dir
    exp_dir.mkdir(parents=True, exist_ok=True)
    latest_path, best_path = exp_dir / CHECKPOINT_LATEST, exp_dir / CHECKPOINT_BEST
    parameters = dict(model.named_parameters())
    optimizer = torch.optim.SGD([parameters[name] for name in trainable], lr=config.lr,
                                momentum=config.momentum, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_lr,
                                               gamma=config.step_lr_gamma)
    start_epoch, best_top1, rows = _resume(config, latest_path, model, optimizer, schedule)
    model.to(device)

    generator = torch.Generator()
    train_loader = make_loader(train_set, batch_size=config.batch_size, shuffle=True,
                               workers=config.workers, generator=generator, device=str(device))
    test_loader = make_loader(test_set, batch_size=config.eval_batch_size or config.batch_size,
                              shuffle=False, workers=config.workers, device=str(device))
    augment = build_train_augment(config)
    if augment is not None:
        print(f"[transfer] PRIME on training batches: {augment.extra_repr()}", file=sys.stderr)
    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        torch.manual_seed(epoch_seed(config.seed, epoch))
        generator.manual_seed(epoch_seed(config.seed, epoch))
        if augment is not None:
            augment.manual_seed(prime_epoch_seed(config, epoch))
        set_train_mode(model, frozen_norms)
        lr = optimizer.param_groups[0]["lr"]
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
                   disable=not config.progress, file=sys.stderr, dynamic_ncols=True)
        loss_sum, correct, seen = _train_epoch(model, bar, optimizer, augment, device, lr)
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum / max(seen, 1),
               "train_top1": 100.0 * correct / max(seen, 1), "test_loss": None, "test_top1": None}
        is_best = False
        # robustness library: evaluate when epoch % log_iters == 0, and after the last epoch
        if epoch % config.log_iters == 0 or epoch + 1 == config.epochs:
            row["test_top1"], row["test_loss"] = accuracy_and_loss(
                model, test_loader, device, desc="test", progress=config.progress)
            is_best = best_top1 is None or row["test_top1"] > best_top1
            best_top1 = row["test_top1"] if is_best else best_top1
        schedule.step()
        row["best_test_top1"] = best_top1
        row["seconds"] = round(time.perf_counter() - started, 3)
        rows.append(row)
        checkpoint = {
            "kind": CHECKPOINT_KIND, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(), "epoch": epoch + 1, "best_top1": best_top1,
            "config": config.to_dict(), "log": rows, **(extra or {}),
        }
        atomic_torch_save(checkpoint, latest_path)
        if is_best:
            atomic_torch_save(checkpoint, best_path)
        if config.save_ckpt_iters > 0 and (epoch + 1) % config.save_ckpt_iters == 0:
            atomic_torch_save(checkpoint, exp_dir / f"{epoch + 1}_checkpoint.pt")
        write_logs(exp_dir, rows)
        test_text = "" if row["test_top1"] is None else f" test_top1 {row['test_top1']:.2f}"
        print(f"[epoch {epoch + 1}/{config.epochs}] lr {lr:g} train_loss {row['train_loss']:.4f} "
              f"train_top1 {row['train_top1']:.2f}{test_text} ({row['seconds']:.1f} s)", file=sys.stderr)
    return {"epoch": max(start_epoch, config.epochs), "best_top1": best_top1, "latest": latest_path,
            "best": best_path if best_path.exists() else None}
