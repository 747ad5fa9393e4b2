"""Time PRIME: images per second on batches of 512x512 photographs (CPU, and CUDA when present),
and the overhead of PRIME in a training step, with and without PRIME measured side by side.

1. Throughput: PRIME with the transfer settings (colour + filter, width 3, depth 1), the
   ImageNet preset (+ diffeomorphism, depth up to 3), and each primitive alone, on a batch of
   real photographs from scikit-image resized to 512x512 (float32 in [0, 1]). Best of
   ``--repeat`` runs after one warm-up; images/s = batch / best time.
2. Training-step overhead: one SGD step (forward, backward, update) of the classification
   package's tiny ResNet (``resnet_tiny``) on a batch of ``--step-batch`` images at
   ``--step-size`` px, without and with PRIME (transfer settings) applied to the batch first.
   The two variants alternate within each repeat (so load changes hit both alike); the ratios
   are best(with) / best(without) over the repeats, of wall time and of this process's CPU time
   (the steadier number on a shared machine; medians in the JSON).
3. ``--openmmlab``: the same side-by-side ratio for one ``model.train_step`` of the tiny mmdet
   Mask R-CNN and tiny mmseg UperNet test configs on their synthetic data sets (the data
   preprocessor plain vs wrapped in PRIMEDataPreprocessor).

    .venv/bin/python bench/bench_prime.py [--quick] [--batch 16] [--repeat 3] [--devices cpu cuda]
        [--step-size 224] [--step-batch 32] [--openmmlab] [--threads N] [--json OUT.json]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from robust_transfer.augment import IMAGENET_PRESET, PRIME, TRANSFER_DEFAULTS  # noqa: E402

PHOTOGRAPHS = ("astronaut", "coffee", "chelsea", "rocket")
VARIANTS = {
    "transfer (colour+filter, w3 d1)": dict(TRANSFER_DEFAULTS),
    "imagenet preset (+diffeo, d1..3)": dict(IMAGENET_PRESET),
    "colour only": dict(TRANSFER_DEFAULTS, filter=False),
    "filter only": dict(TRANSFER_DEFAULTS, color=False),
    "diffeo only": dict(TRANSFER_DEFAULTS, color=False, filter=False, diffeo=True),
}


def photographs(count: int, size: int) -> torch.Tensor:
    """``count`` photographs (cycled) resized to size x size: (count, 3, size, size) in [0, 1]."""
    import skimage.data
    from PIL import Image

    tiles = []
    for i in range(count):
        photo = Image.fromarray(getattr(skimage.data, PHOTOGRAPHS[i % len(PHOTOGRAPHS)])()).convert("RGB")
        tiles.append(np.asarray(photo.resize((size, size), Image.LANCZOS)))
    # contiguous NCHW: torch 2.14.1 on CPU crashes in conv backward on channels-last-strided input
    return torch.from_numpy(np.stack(tiles)).permute(0, 3, 1, 2).contiguous().float().div(255)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call. CPU time is the steadier number
    on a shared machine (other processes' load hardly changes it); it is not meaningful for CUDA."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    if device is not None:
        _sync(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def time_prime(params: dict, batch: torch.Tensor, repeat: int) -> tuple[float, float]:
    """Best wall and best CPU time of PRIME on ``batch`` over ``repeat`` runs (after a warm-up)."""
    prime = PRIME(seed=0, **params)
    prime(batch)
    _sync(batch.device)
    times = [_timed(lambda: prime(batch), batch.device) for _ in range(repeat)]
    return min(t[0] for t in times), min(t[1] for t in times)


def throughput(devices: list[str], batch_size: int, size: int, repeat: int) -> list[dict]:
    rows = []
    clean = photographs(batch_size, size)
    for device_name in devices:
        device = torch.device(device_name)
        batch = clean.to(device)
        for label, params in VARIANTS.items():
            wall, cpu = time_prime(params, batch, repeat)
            rows.append({"device": device_name, "variant": label, "batch": batch_size, "size": size,
                         "seconds": wall, "images_per_s": batch_size / wall, "cpu_seconds": cpu,
                         "images_per_cpu_s": batch_size / cpu})
            print(f"  {device_name:5s} {label:34s} {batch_size / wall:7.1f} img/s wall "
                  f"({wall * 1000:7.1f} ms / batch of {batch_size} at {size}x{size}); "
                  f"CPU time {cpu * 1000:7.1f} ms = {batch_size / cpu:6.1f} img per CPU-s", flush=True)
    return rows


def side_by_side(step_without, step_with, repeat: int) -> dict:
    """Alternate the two step functions ``repeat`` times (after one warm-up each). Ratios of the
    best wall times and of the best CPU times (medians of the wall times in the JSON too)."""
    step_without()
    step_with()
    without, with_ = [], []
    for _ in range(repeat):
        without.append(_timed(step_without))
        with_.append(_timed(step_with))
    wall_a, wall_b = min(t[0] for t in without), min(t[0] for t in with_)
    cpu_a, cpu_b = min(t[1] for t in without), min(t[1] for t in with_)
    med_a = statistics.median(t[0] for t in without)
    med_b = statistics.median(t[0] for t in with_)
    return {"without_s": wall_a, "with_s": wall_b, "ratio": wall_b / wall_a,
            "cpu_without_s": cpu_a, "cpu_with_s": cpu_b, "cpu_ratio": cpu_b / cpu_a,
            "median_without_s": med_a, "median_with_s": med_b, "median_ratio": med_b / med_a,
            "repeat": repeat}


def _print_step(label: str, result: dict) -> None:
    print(f"  {label:62s} wall {result['without_s'] * 1000:7.1f} -> {result['with_s'] * 1000:7.1f} ms "
          f"(x{result['ratio']:.3f}); CPU {result['cpu_without_s'] * 1000:7.1f} -> "
          f"{result['cpu_with_s'] * 1000:7.1f} ms (x{result['cpu_ratio']:.3f})", flush=True)


def classification_overhead(device_name: str, batch_size: int, size: int, repeat: int) -> dict:
    from robust_transfer.classification.models import NORMALIZATION_STATS, NormalizedClassifier, create_model

    device = torch.device(device_name)
    torch.manual_seed(0)
    mean, std = NORMALIZATION_STATS["cifar10"]
    model = NormalizedClassifier(create_model("resnet_tiny", 10), mean, std).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    images = photographs(batch_size, size).to(device)
    labels = torch.arange(batch_size, device=device) % 10
    prime = PRIME(seed=0)
    criterion = torch.nn.CrossEntropyLoss()

    def step(augment: bool):
        x = prime(images) if augment else images
        loss = criterion(model(x), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _sync(device)

    result = side_by_side(lambda: step(False), lambda: step(True), repeat)
    result.update(task="classification", model="resnet_tiny", device=device_name, batch=batch_size,
                  size=size)
    return result


def openmmlab_overhead(repeat: int) -> list[dict]:
    """Tiny mmdet / mmseg train steps with the plain vs the PRIME-wrapped data preprocessor."""
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DATASETS, MODELS, DefaultScope, init_default_scope

    import robust_transfer.openmmlab.prime_preprocessor  # noqa: F401
    from robust_transfer.datasets.synthetic_ade20k import write_synthetic_ade20k
    from robust_transfer.datasets.synthetic_coco import write_synthetic_coco

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cases = []
        import robust_transfer.openmmlab.mmdet  # noqa: F401
        coco = write_synthetic_coco(tmp / "coco", num_train=4, num_val=1)
        det = Config.fromfile(str(REPO / "mmdetection/configs/tests"
                                  / "mask-rcnn_r18-tiny_fpn_synthetic-coco.py"))
        det.train_dataloader.dataset.data_root = str(coco.root) + "/"
        cases.append(("detection", "mmdet", det))
        import robust_transfer.openmmlab.mmseg  # noqa: F401
        ade = write_synthetic_ade20k(tmp / "ade", num_train=4, num_val=1)
        seg = Config.fromfile(str(REPO / "mmsegmentation/configs/tiny"
                                  / "upernet_r18-tiny_1xb4-40it_synthetic-ade20k-64x80.py"))
        seg.train_dataloader.dataset.data_root = str(ade)
        cases.append(("segmentation", "mmseg", seg))
        for task, scope, cfg in cases:
            init_default_scope(scope)
            with DefaultScope.overwrite_default_scope(scope):
                torch.manual_seed(0)
                model = MODELS.build(cfg.model)
                dataset = DATASETS.build(cfg.train_dataloader.dataset)
                batch = pseudo_collate([dataset[i] for i in range(4)])
                wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
                plain = model.data_preprocessor
                wrapped = MODELS.build(dict(type="PRIMEDataPreprocessor",
                                            preprocessor=dict(cfg.model.data_preprocessor), seed=0))
                model.train()

                def step(preprocessor):
                    model.data_preprocessor = preprocessor
                    model.train_step({"inputs": list(batch["inputs"]),
                                      "data_samples": batch["data_samples"]}, wrapper)

                result = side_by_side(lambda: step(plain), lambda: step(wrapped), repeat)
                model.data_preprocessor = plain
            result.update(task=task, model=Path(cfg.filename).stem, device="cpu", batch=4,
                          size="x".join(map(str, batch["inputs"][0].shape[1:])))
            rows.append(result)
            _print_step(f"{task} {result['model']} (batch 4)", result)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="batch 4, 1 repeat, step size 64: a smoke run of a few seconds")
    parser.add_argument("--batch", type=int, default=16, help="images per PRIME batch (default 16)")
    parser.add_argument("--size", type=int, default=512, help="image side (default 512)")
    parser.add_argument("--repeat", type=int, default=3, help="timed repeats (default 3)")
    parser.add_argument("--devices", nargs="+", default=None,
                        help="devices (default: cpu, plus cuda when available)")
    parser.add_argument("--step-size", type=int, default=224, help="training-step image side (224)")
    parser.add_argument("--step-batch", type=int, default=32, help="training-step batch (32)")
    parser.add_argument("--step-repeat", type=int, default=5, help="training-step repeats (5)")
    parser.add_argument("--openmmlab", action="store_true",
                        help="also the tiny mmdet / mmseg train-step overhead")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice); 1 gives steadier "
                             "numbers on a shared machine")
    parser.add_argument("--json", default=None, help="write the numbers to this JSON file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.batch, args.repeat, args.step_size, args.step_batch, args.step_repeat = 4, 1, 64, 16, 3
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(f"PRIME throughput ({platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads)")
    rows = throughput(devices, args.batch, args.size, args.repeat)
    print("training-step overhead, without -> with PRIME (side by side, best of repeats)")
    steps = []
    for device in devices:
        result = classification_overhead(device, args.step_batch, args.step_size, args.step_repeat)
        steps.append(result)
        _print_step(f"{device} classification resnet_tiny (batch {args.step_batch}, "
                    f"{args.step_size}px)", result)
    if args.openmmlab:
        steps.extend(openmmlab_overhead(args.step_repeat))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "machine": platform.machine(), "throughput": rows, "train_step": steps}, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
