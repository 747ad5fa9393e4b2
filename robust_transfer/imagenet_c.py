"""ImageNet-C top-1 of an ImageNet backbone, per corruption and severity: the x-axis of the
robustness-transfer correlation, measured instead of typed in.

``robust-transfer imagenet-c CHECKPOINT --data IMAGENET_VAL_DIR`` reads the ImageNet validation
folder (``<wnid>/<image>.JPEG``, classes in sorted order = the usual 1000-class indices), takes
each image through the standard evaluation transform (shorter side resized to 256 with
bilinear interpolation, centre crop 224), corrupts the 224x224 crop as ImageNet-C was made
(Hendrycks & Dietterich corrupted the centre crops) with the project's corruption library,
torch backend, batched on ``--device``, and measures top-1 after the ImageNet normalisation.

Every image's random stream is keyed by its path inside the folder, so numbers do not depend
on batch size, worker count, shard or device. Cells go through the shared grid runner
(:func:`robust_transfer.grid.run_grid`) into the shared results schema: a killed run resumes
(``--resume``), ``--shard i/n`` splits the cells over jobs (``robust-transfer merge``). When the
grid is complete the backbone's summary number (mCE by default) is added to a YAML file of the
shape ``robust-transfer report --imagenet-robustness`` reads: ``{metric, values: {id: value}}``.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE, CROP = 256, 224
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
#: Summary numbers the robustness file can hold: key -> (label, value from a metrics.Summary
#: and the cells). mCE is what the study's suites quote (published numbers, lower = better).
ROBUSTNESS_METRICS = {
    "mce": "ImageNet-C mCE (%, AlexNet-normalised, measured; lower = more robust)",
    "rpc": "ImageNet-C rPC (%, measured; higher = more robust)",
    "mpc": "ImageNet-C mPC (top-1 %, measured; higher = more robust)",
}


def scan_imagenet_val(root: str | Path, limit: int | None = None) -> tuple[list[str], list[int]]:
    """``(relative image paths, labels)`` of an ImageNet-val-layout folder, sorted.

    ``limit`` keeps that many images spread evenly over the sorted list (so every class keeps
    its share), not the first ones (which would be the first classes only).
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"--data {root}: no such folder (expected the ImageNet validation "
                         "folder: one sub-folder per class, e.g. n01440764/*.JPEG)")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    paths, labels = [], []
    for label, wnid in enumerate(classes):
        for image in sorted((root / wnid).iterdir()):
            if image.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(f"{wnid}/{image.name}")
                labels.append(label)
    if not paths:
        raise ValueError(f"--data {root}: no class folders with images (.JPEG/.jpg/.png) inside")
    if limit is not None:
        if limit < 1:
            raise ValueError(f"--limit must be at least 1, got {limit}")
        keep = np.unique(np.linspace(0, len(paths) - 1, min(limit, len(paths))).round().astype(int))
        paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
    return paths, labels


class ImageNetValCrops(torch.utils.data.Dataset):
    """``(uint8 (3, 224, 224) centre crop, label, key)`` per image: resize 256, crop 224 (PIL)."""

    def __init__(self, root: str | Path, paths: Sequence[str], labels: Sequence[int]):
        from torchvision import transforms

        self.root, self.paths, self.labels = Path(root), list(paths), list(labels)
        self.transform = transforms.Compose([
            transforms.Resize(RESIZE, interpolation=transforms.InterpolationMode.BILINEAR),
            transforms.CenterCrop(CROP)])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(self.root / self.paths[index]) as image:
                crop = self.transform(image.convert("RGB"))
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(f"{self.root / self.paths[index]}: not a readable image ({error})") from None
        array = torch.from_numpy(np.asarray(crop, dtype=np.uint8).copy()).permute(2, 0, 1)
        return array, self.labels[index], self.paths[index]


def load_imagenet_classifier(checkpoint: str | Path, arch: str = "auto", fmt: str | None = None,
                             weights_only: bool = True) -> tuple[torch.nn.Module, str]:
    """The ImageNet classifier (with its 1000-class head) of a checkpoint in any supported
    layout; ``arch="auto"`` reads a ResNet off the keys. Returns ``(model in eval mode, arch)``."""
    from .backbones.checks import CheckpointError
    from .backbones.classification import build_backbone, load_imagenet_backbone
    from .backbones.resnet_family import build_torchvision_resnet, infer_resnet_spec

    state_dict, _ = load_imagenet_backbone(checkpoint, arch, fmt=fmt, include_fc=True,
                                           weights_only=weights_only)
    if "fc.weight" not in state_dict and "head.weight" not in state_dict:
        raise CheckpointError(f"{checkpoint}: no ImageNet classifier (fc.*/head.*) to evaluate")
    if arch == "auto" and "fc.weight" in state_dict:
        spec = infer_resnet_spec(state_dict, str(checkpoint))
        model, arch = build_torchvision_resnet(spec), spec.name
    else:
        arch = "swin_t" if arch == "auto" else arch
        model = build_backbone(arch)
    model.load_state_dict(state_dict)
    return model.eval(), arch


def top1_under_corruption(model: torch.nn.Module, loader, corruption: tuple[str, int] | None, *,
                          seed: int, device: torch.device, desc: str = "", progress: bool = True) -> float:
    """Top-1 (percent) of ``model`` over ``loader``'s crops, each corrupted on ``device`` with
    ``corruption = (name, severity)`` (None: clean), image keyed by its path."""
    from tqdm import tqdm

    from .corruptions import corrupt_batch

    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    correct = total = 0
    with torch.no_grad():
        for crops, labels, keys in tqdm(loader, desc=desc, leave=False, disable=not progress,
                                        file=sys.stderr, dynamic_ncols=True, unit="batch"):
            crops = crops.to(device)
            if corruption is not None:
                crops = corrupt_batch(crops, corruption[0], corruption[1], seed=seed, keys=list(keys))
            logits = model((crops.float() / 255 - mean) / std)
            correct += int((logits.argmax(1).cpu() == torch.as_tensor(labels)).sum())
            total += len(labels)
    return 100.0 * correct / total


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available, else CPU) or a torch device name; one-line error otherwise."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r} is not a torch device (cpu, cuda, cuda:1, auto)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available here")
    return device


def run_imagenet_c(checkpoint: str | Path, data: str | Path, out: str | Path, *,
                   backbone_id: str | None = None, arch: str = "auto", fmt: str | None = None,
                   corruptions="benchmark", severities: Sequence[int] = (1, 2, 3, 4, 5),
                   seed: int = 0, batch_size: int = 64, device: str = "auto", workers: int = 2,
                   limit: int | None = None, shard: str | None = None, resume: bool = False,
                   weights_only: bool = True, progress: bool = True) -> tuple[dict, Path]:
    """Evaluate the clean cell and ``corruptions`` x ``severities`` of ``checkpoint`` on the
    ImageNet validation folder ``data``; write (and resume) the results file ``out`` (or its
    shard). Returns ``(results, path written)``. Inputs are checked before the model is built.
    """
    from .grid import build_cells, parse_shard, run_grid, select_shard, shard_path
    from .output_paths import check_writable_file
    from .results import new_results

    if batch_size < 1 or workers < 0:
        raise ValueError("--batch-size must be at least 1 and --workers at least 0")
    index, count = parse_shard(shard)
    cells = select_shard(build_cells(corruptions, [0, *severities]), index, count)
    path = shard_path(out, index, count) if count > 1 else Path(out)
    check_writable_file(path, "--out")
    paths, labels = scan_imagenet_val(data, limit)
    torch_device = resolve_device(device)
    model, arch = load_imagenet_classifier(checkpoint, arch, fmt, weights_only)
    model.to(torch_device)
    loader = torch.utils.data.DataLoader(ImageNetValCrops(data, paths, labels), batch_size=batch_size,
                                         shuffle=False, num_workers=workers)
    backbone_id = backbone_id or Path(checkpoint).stem
    subset = "" if limit is None else f"[{len(paths)} of limit {limit}]"
    results = new_results(
        task="imagenet-c", model=backbone_id, backbone=backbone_id, metrics=["top1"],
        config=f"imagenet-c resize{RESIZE}-bilinear/crop{CROP}, corrupted after the crop",
        checkpoint=str(Path(checkpoint).resolve()), dataset=f"imagenet-val{subset}", seed=seed,
        backend="torch", metric_scale=100.0,
        extra={"data": str(Path(data).resolve()), "images": len(paths), "arch": arch,
               **({"shard": f"{index}/{count}"} if count > 1 else {})})

    def evaluate_cell(cell) -> dict[str, float]:
        corruption = None if cell.is_clean else (cell.corruption, cell.severity)
        return {"top1": top1_under_corruption(model, loader, corruption, seed=seed,
                                              device=torch_device, desc=str(cell), progress=progress)}

    results = run_grid(cells, evaluate_cell, results, path, resume=resume,
                       images_per_cell=len(paths), progress=progress)
    return results, path


def imagenet_robustness(results: dict, metric: str = "mce") -> float | None:
    """The summary number ``metric`` (a key of :data:`ROBUSTNESS_METRICS`) of an ImageNet-C
    results document, in percent; None while a benchmark cell of its severities is missing."""
    from .corruptions import CORRUPTION_GROUPS
    from .metrics import mean_corruption_error, summarize
    from .results import cells_by_int_severity

    if metric not in ROBUSTNESS_METRICS:
        raise ValueError(f"unknown robustness metric {metric!r}; allowed: {', '.join(ROBUSTNESS_METRICS)}")
    cells = cells_by_int_severity(results)
    severities = sorted({s for by_sev in cells.values() for s in by_sev if s > 0})
    summary = summarize(cells, "top1", CORRUPTION_GROUPS["benchmark"], severities or [1])
    if summary.missing:
        return None
    if metric == "mce":
        return 100.0 * mean_corruption_error(cells, "top1", 100.0, severities)
    return 100.0 * summary.rPC if metric == "rpc" else summary.mPC


def update_robustness_file(path: str | Path, backbone_id: str, value: float, metric: str = "mce",
                           *, results_path: str | Path | None = None) -> dict:
    """Set ``values[backbone_id]`` in the ``{metric, values}`` YAML file ``path`` (created when
    missing) that ``robust-transfer report --imagenet-robustness`` reads; refuse a file of
    another metric. Written atomically. Returns the document."""
    import yaml

    from .output_paths import write_yaml_atomically

    path, label = Path(path), ROBUSTNESS_METRICS[metric]
    document = yaml.safe_load(path.read_text()) if path.exists() else None
    document = document or {"metric": label, "values": {}}
    if not isinstance(document, dict) or not isinstance(document.get("values"), dict):
        raise ValueError(f"{path}: not an ImageNet robustness file ({{metric, values}})")
    if document.get("metric") != label:
        raise ValueError(f"{path} holds {document.get('metric')!r}, not {label!r}: "
                         "give another --robustness-file or the same --robustness-metric")
    document["values"][backbone_id] = round(float(value), 4)
    if results_path is not None:
        document.setdefault("results", {})[backbone_id] = str(Path(results_path).resolve())
    write_yaml_atomically(path, document)
    return document
