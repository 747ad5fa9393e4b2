"""Stand-ins for what a real reproduction downloads: the data sets and the ImageNet backbones.

``robust-transfer reproduce --smoke`` and ``robust-transfer demo`` run the study's pipeline
(converters, training tools, robustness tools, report) on these instead of COCO, ADE20K,
CIFAR-10 and the published ImageNet checkpoints, none of which can be fetched here:

* :func:`write_study_data` -- the three synthetic data sets in their real on-disk formats
  (COCO json + JPEGs, an ``ADEChallengeData2016`` folder, CIFAR-10 python batches), sized by a
  named scale (:data:`DATA_SCALES`).
* :func:`pretrain_standin` -- a torchvision ResNet-18 pre-trained briefly on a synthetic
  20-class image classification task (the "ImageNet" of the miniature study), plainly or with
  corruption-style noise augmentation (the stand-in for a robust ImageNet model: each training
  image is, with probability 1/2, hit by Gaussian, shot or impulse noise of a random severity,
  drawn with the corruption library), then saved in the container and key layout of a published
  checkpoint (``torchvision``, ``ant``, ``deepaugment``, ``prime``, ``robustness``) so the real
  converters read it. Its "ImageNet robustness" is measured the way the paper's backbones were:
  clean and corrupted accuracy on the pre-training task's test images over the benchmark
  corruptions and severities, through the shared grid runner, results schema and metrics; the
  rPC (percent) is what the report correlates with the downstream rPC.

Command line (the reproduction plans call these)::

    python -m robust_transfer.standins data ROOT --scale demo
    python -m robust_transfer.standins backbone OUT.pth --name plain --layout torchvision \\
        --augment none --steps 150
    python -m robust_transfer.standins robustness-table OUT.json plain=A.json noisy=B.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Mapping, Sequence

#: Image counts per scale (``RT_DEMO_SCALE`` picks one for the demo): of the synthetic data sets
#: and of the stand-ins' pre-training test images (``standin_test``). Training images are the
#: same at every scale; the evaluated images are what the scales change, since every one of them
#: is evaluated in every grid cell.
DATA_SCALES: dict[str, dict[str, int]] = {
    "demo": {"coco_train": 16, "coco_val": 8, "ade_train": 8, "ade_val": 8,
             "cifar_train": 500, "cifar_test": 200, "standin_test": 200},
    "ci": {"coco_train": 16, "coco_val": 2, "ade_train": 8, "ade_val": 2,
           "cifar_train": 500, "cifar_test": 40, "standin_test": 40},
}
#: Layouts :func:`save_in_layout` writes (the names of ``robust_transfer.checkpoints``).
LAYOUTS = ("torchvision", "ant", "deepaugment", "prime", "robustness")
AUGMENTATIONS = ("none", "noise")
NOISE_CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise")
PRETRAIN_CLASSES = 20
PRETRAIN_SEED = 7  # another draw than the downstream CIFAR-10 stand-in (seed 0)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ROBUSTNESS_METRIC = "pre-training rPC (%), synthetic 20-class task"


# ----------------------------------------------------------------------------- data sets


def study_data_paths(root: str | Path) -> dict[str, Path]:
    """Where :func:`write_study_data` puts each data set under ``root``."""
    root = Path(root)
    return {"coco": root / "coco", "ade20k": root / "ade" / "ADEChallengeData2016",
            "cifar10": root / "cifar10"}


def write_study_data(root: str | Path, scale: str = "demo") -> dict[str, Path]:
    """Write the synthetic COCO, ADE20K and CIFAR-10 under ``root`` (skipped when a marker says
    they were written at this scale already); returns their folders."""
    if scale not in DATA_SCALES:
        raise ValueError(f"unknown data scale {scale!r}; allowed: {', '.join(DATA_SCALES)}")
    sizes = DATA_SCALES[scale]
    paths = study_data_paths(root)
    marker = Path(root) / "written.json"
    if marker.is_file() and json.loads(marker.read_text()).get("sizes") == sizes:
        return paths
    from .datasets.synthetic import write_synthetic_cifar10
    from .datasets.synthetic_ade20k import write_synthetic_ade20k
    from .datasets.synthetic_coco import write_synthetic_coco

    write_synthetic_coco(paths["coco"], num_train=sizes["coco_train"], num_val=sizes["coco_val"])
    write_synthetic_ade20k(paths["ade20k"], num_train=sizes["ade_train"], num_val=sizes["ade_val"])
    write_synthetic_cifar10(paths["cifar10"], num_train=sizes["cifar_train"],
                            num_test=sizes["cifar_test"])
    marker.write_text(json.dumps({"scale": scale, "sizes": sizes}, indent=1) + "\n")
    return paths


# ----------------------------------------------------------------------------- backbones


def save_in_layout(state_dict: Mapping, path: str | Path, layout: str, arch: str = "resnet18") -> None:
    """Save a torchvision-keyed state dict the way ``layout``'s project publishes its
    checkpoints (container and key prefixes; see :mod:`robust_transfer.checkpoints`)."""
    import torch

    sd = {k: v for k, v in state_dict.items()}
    if layout == "torchvision":
        obj = sd
    elif layout == "ant":
        obj = {"model_state_dict": {f"module.{k}": v for k, v in sd.items()}}
    elif layout == "deepaugment":
        obj = {"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 0, "arch": arch}
    elif layout == "prime":
        obj = {"state_dict": sd}
    elif layout == "robustness":
        mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
        obj = {"model": {**{f"module.model.{k}": v for k, v in sd.items()},
                         **{f"module.attacker.model.{k}": v for k, v in sd.items()},
                         "module.normalizer.new_mean": mean, "module.normalizer.new_std": std,
                         "module.attacker.normalize.new_mean": mean,
                         "module.attacker.normalize.new_std": std},
               "epoch": 0}
    else:
        raise ValueError(f"unknown layout {layout!r}; allowed: {', '.join(LAYOUTS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _noise_augment(images, generator, seed: int, step: int):
    """Corrupt about half of a uint8 (N, 3, H, W) batch with a random noise corruption and
    severity (the corruption library's torch backend; one random stream per image)."""
    import torch

    from .corruptions import corrupt_batch

    out = images.clone()
    chosen = torch.rand(len(images), generator=generator) < 0.5
    names = torch.randint(len(NOISE_CORRUPTIONS), (len(images),), generator=generator)
    severities = torch.randint(1, 6, (len(images),), generator=generator)
    for index in torch.nonzero(chosen).flatten().tolist():
        out[index:index + 1] = corrupt_batch(
            images[index:index + 1], NOISE_CORRUPTIONS[int(names[index])],
            int(severities[index]), seed=seed, keys=[f"train-{step}-{index}"])
    return out


def _train_standin(net, train_images, train_labels, normalise, generator, *, name: str,
                   augment: str, steps: int, batch_size: int, lr: float, seed: int) -> None:
    """SGD with a one-cycle schedule on random flipped (and, for ``noise``, noise-augmented)
    batches drawn from ``generator``; leaves ``net`` in eval mode."""
    import torch

    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(steps, 1),
                                                   pct_start=0.2)
    net.train()
    for step in range(steps):
        index = torch.randint(len(train_images), (batch_size,), generator=generator)
        batch = train_images[index]
        flip = torch.rand(batch_size, generator=generator) < 0.5
        batch[flip] = batch[flip].flip(-1)
        if augment == "noise":
            batch = _noise_augment(batch, generator, seed, step)
        loss = torch.nn.functional.cross_entropy(net(normalise(batch)), train_labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if (step + 1) % 50 == 0 or step + 1 == steps:
            print(f"[stand-in {name}] step {step + 1}/{steps} loss {loss.item():.3f}",
                  file=sys.stderr, flush=True)
    net.eval()


def _evaluate_standin(net, normalise, test_x, test_y, cells, results: dict, results_path: Path, *,
                      seed: int) -> dict:
    """Top-1 of ``net`` on the test images, clean and under each corrupted cell, written anew to
    ``results_path`` through the shared grid runner; returns the results document."""
    import torch

    from .corruptions import corrupt_batch
    from .grid import run_grid

    test_images = torch.from_numpy(test_x).permute(0, 3, 1, 2).contiguous()
    test_labels = torch.from_numpy(test_y)
    keys = [f"test-{i}" for i in range(len(test_images))]

    def evaluate(cell) -> dict[str, float]:
        images = test_images if cell.is_clean else corrupt_batch(
            test_images, cell.corruption, cell.severity, seed=seed, keys=keys)
        with torch.no_grad():
            predictions = net(normalise(images)).argmax(1)
        return {"top1": 100.0 * float((predictions == test_labels).float().mean())}

    results_path.unlink(missing_ok=True)
    return run_grid(cells, evaluate, results, results_path, progress=False)


def pretrain_standin(out: str | Path, *, name: str, layout: str = "torchvision",
                     augment: str = "none", steps: int = 150, batch_size: int = 32,
                     lr: float = 0.05, seed: int = 0, num_train: int = 2000, num_test: int = 100,
                     corruptions="benchmark", severities: Sequence[int] = (1, 2, 3, 4, 5),
                     arch: str = "resnet18") -> dict:
    """Pre-train the stand-in, save it in ``layout`` at ``out`` and measure its robustness.

    Writes ``out`` (the checkpoint), ``<out stem>.pretraining.json`` (its results on the
    pre-training task, shared results schema) and ``<out stem>.robustness.json`` (``{"metric",
    "value", "backbone"}``: the rPC in percent). Returns the latter's content.
    """
    import torch
    import torchvision

    from .datasets.synthetic import synthetic_cifar_split
    from .grid import build_cells
    from .metrics import summarize
    from .results import cells_by_int_severity, new_results, save_results

    if augment not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {augment!r}; allowed: {', '.join(AUGMENTATIONS)}")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; allowed: {', '.join(LAYOUTS)}")
    if arch != "resnet18":
        raise ValueError("the stand-in backbone is a torchvision resnet18")
    out = Path(out)
    start = time.perf_counter()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    train_x, train_y = synthetic_cifar_split(num_train, split="train", seed=PRETRAIN_SEED,
                                             num_classes=PRETRAIN_CLASSES)
    test_x, test_y = synthetic_cifar_split(num_test, split="test", seed=PRETRAIN_SEED,
                                           num_classes=PRETRAIN_CLASSES)
    train_images = torch.from_numpy(train_x).permute(0, 3, 1, 2).contiguous()
    train_labels = torch.from_numpy(train_y)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def normalise(batch_uint8):
        return (batch_uint8.float() / 255.0 - mean) / std

    net = torchvision.models.resnet18(num_classes=PRETRAIN_CLASSES)
    _train_standin(net, train_images, train_labels, normalise, generator, name=name, augment=augment,
                   steps=steps, batch_size=batch_size, lr=lr, seed=seed)
    save_in_layout(net.state_dict(), out, layout, arch)

    results = new_results(
        task="pretraining", model=f"standin_{name}", backbone=name, transfer_mode="pre-training",
        config=f"torchvision {arch}, {steps} SGD steps of {batch_size}, lr {lr}, augment={augment}",
        checkpoint=str(out.resolve()), dataset=f"synthetic {PRETRAIN_CLASSES}-class test [:{num_test}]",
        seed=seed, backend="torch", metrics=["top1"], metric_scale=100.0,
        extra={"layout": layout, "augment": augment, "train_images": num_train})
    cells = build_cells(corruptions, [0, *severities])
    stem = out.with_suffix("")
    results_path = stem.with_name(stem.name + ".pretraining.json")
    results = _evaluate_standin(net, normalise, test_x, test_y, cells, results, results_path, seed=seed)
    summary = summarize(cells_by_int_severity(results), "top1",
                        sorted({c.corruption for c in cells if not c.is_clean}))
    robustness = {"backbone": name, "metric": ROBUSTNESS_METRIC,
                  "value": None if summary.rPC is None else round(100.0 * summary.rPC, 2),
                  "clean_top1": summary.P, "mPC_top1": summary.mPC, "augment": augment,
                  "layout": layout, "seconds": round(time.perf_counter() - start, 1)}
    save_results(results, results_path)
    robustness_path = stem.with_name(stem.name + ".robustness.json")
    robustness_path.write_text(json.dumps(robustness, indent=1) + "\n")
    print(f"[stand-in {name}] {layout} layout -> {out}; clean top1 {summary.P:.1f}%, "
          f"mPC {summary.mPC:.1f}%, rPC {robustness['value']}% ({robustness['seconds']} s)",
          file=sys.stderr)
    return robustness


def write_robustness_table(out: str | Path, entries: Mapping[str, str | Path]) -> dict:
    """Combine per-backbone ``*.robustness.json`` files into the ``{metric, values}`` file that
    ``robust-transfer report --imagenet-robustness`` reads."""
    values, metric = {}, ROBUSTNESS_METRIC
    for backbone, path in entries.items():
        document = json.loads(Path(path).read_text())
        metric = document.get("metric", metric)
        if document.get("value") is not None:
            values[backbone] = document["value"]
    table = {"metric": metric, "values": values}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(table, indent=1) + "\n")
    return table


# ----------------------------------------------------------------------------- command line


def _parse_entry(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected BACKBONE=FILE, got {text!r}")
    name, path = text.split("=", 1)
    return name, path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m robust_transfer.standins",
        description="Synthetic data sets and pre-trained stand-in backbones for smoke runs "
                    "and the demo of the reproduction pipeline.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("data", help="write synthetic COCO, ADE20K and CIFAR-10 under ROOT")
    p.add_argument("root")
    p.add_argument("--scale", default="demo", choices=sorted(DATA_SCALES))
    p = sub.add_parser("backbone", help="pre-train a stand-in ResNet-18 and save it in a "
                                        "published checkpoint's layout")
    p.add_argument("out", help="checkpoint file to write")
    p.add_argument("--name", required=True, help="backbone id (used in the robustness file)")
    p.add_argument("--layout", default="torchvision", choices=LAYOUTS)
    p.add_argument("--augment", default="none", choices=AUGMENTATIONS)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-images", type=int, default=100)
    p.add_argument("--corruptions", nargs="+", default=["benchmark"],
                   help="corruptions of the robustness measurement (names or groups)")
    p.add_argument("--severities", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    p = sub.add_parser("robustness-table", help="combine *.robustness.json files for "
                                                "`robust-transfer report --imagenet-robustness`")
    p.add_argument("out")
    p.add_argument("entries", nargs="+", type=_parse_entry, metavar="BACKBONE=FILE")
    args = parser.parse_args(argv)
    try:
        if args.command == "data":
            paths = write_study_data(args.root, args.scale)
            print("\n".join(f"{k}: {v}" for k, v in paths.items()))
        elif args.command == "backbone":
            pretrain_standin(args.out, name=args.name, layout=args.layout, augment=args.augment,
                             steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                             seed=args.seed, num_test=args.test_images,
                             corruptions=args.corruptions, severities=args.severities)
        else:
            table = write_robustness_table(args.out, dict(args.entries))
            print(json.dumps(table))
    except (ValueError, FileNotFoundError) as error:
        print(f"standins {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
