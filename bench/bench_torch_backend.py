"""Time the torch backend against the numpy reference and imagecorruptions 1.1.2, in one run.

For each corruption, all chosen severities on a batch of photographs, per backend:

* ``imagecorruptions`` -- the package itself (through the test shim), one image per call;
* ``numpy`` -- our reference backend, ``corrupt(image, ...)``, one image per call;
* ``torch-cpu`` -- ``corrupt_batch(batch, ...)``, one call per severity for the whole batch
  (``--threads 1 2`` times it once per torch thread count: ``torch-cpu-1t``, ``torch-cpu-2t``);
* ``torch-cuda`` -- the same with the batch already on the GPU (output left there), timed with
  synchronisation; only when CUDA is available.

Printed: seconds per image per backend, the ratios imagecorruptions / X and numpy / torch, and
the torch backends' images per second; the last rows are the whole grid (chosen corruptions x
severities). Every ratio comes from this run. Our backends get one untimed warm-up call per
corruption (it fills their caches: filter matrices, enlarged frost textures); imagecorruptions
has no cache to fill.

Runtime: imagecorruptions' glass_blur alone needs ~1 minute per 480x640 image for the five
severities, so the default (2 images) takes ~5 minutes on one core; ``--quick`` (1 image at
240x320, severities 1 and 5) about a minute; ``--skip-reference`` leaves imagecorruptions out
(e.g. on a GPU machine: ``--skip-reference --batch 64``).

    .venv/bin/python bench/bench_torch_backend.py [--quick] [--images N] [--batch B]
        [--size 480 640] [--corruptions benchmark] [--severities 1 2 3 4 5] [--repeat R]
        [--threads T ...] [--rng-device cpu|images] [--skip-reference] [--json OUT.json]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from bench_corruptions import load_images  # noqa: E402

from robust_transfer.corruptions import (  # noqa: E402
    SEVERITIES,
    corrupt,
    corrupt_batch,
    resolve_corruptions,
)


def _best_of(repeat: int, run) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def time_reference(reference, name, images, severities, repeat) -> float:
    def run():
        for index, image in enumerate(images):
            for severity in severities:
                np.random.seed(1000 * index + severity)
                reference.corrupt(image, severity, name)
    return _best_of(repeat, run)


def time_numpy(name, images, severities, repeat) -> float:
    corrupt(images[0], name, 1, seed=0, key="warm-up")

    def run():
        for index, image in enumerate(images):
            for severity in severities:
                corrupt(image, name, severity, seed=0, key=index)
    return _best_of(repeat, run)


def time_torch(name, batch, severities, repeat, rng_device, threads=None) -> float:
    import torch

    if threads:
        torch.set_num_threads(threads)

    def sync():
        if batch.is_cuda:
            torch.cuda.synchronize(batch.device)

    corrupt_batch(batch[:1], name, 1, seed=0, rng_device=rng_device)
    sync()

    def run():
        for severity in severities:
            corrupt_batch(batch, name, severity, seed=0, rng_device=rng_device)
        sync()
    return _best_of(repeat, run)


SHORT = {"imagecorruptions": "ic", "numpy": "np"}


def _short(backend: str) -> str:
    return SHORT.get(backend, backend.replace("torch-", ""))


def format_table(rows: dict, backends: list[str], n_images: dict, severities) -> str:
    """Seconds per image (all severities) per backend, ratios and torch images per second."""
    torch_backends = [b for b in backends if b.startswith("torch")]
    ratio_cols = []
    if "imagecorruptions" in backends:
        ratio_cols += [("imagecorruptions", b) for b in backends if b != "imagecorruptions"]
    if "numpy" in backends:
        ratio_cols += [("numpy", b) for b in torch_backends]
    header = f"{'corruption':<18}" + "".join(f"{_short(b) + ' s/img':>13}" for b in backends)
    header += "".join(f"{_short(a) + '/' + _short(b):>11}" for a, b in ratio_cols)
    header += "".join(f"{_short(b) + ' img/s':>14}" for b in torch_backends)
    legend = ", ".join(f"{_short(b)} = {b}" for b in backends)
    lines = [f"seconds per image for {len(severities)} severities; a/b = time of a / time of b; "
             f"{legend}", header, "-" * len(header)]
    for name, row in rows.items():
        if name == "grid":
            lines.append("-" * len(header))
        per = {b: row[b] / n_images[b] for b in backends}
        line = f"{name:<18}" + "".join(f"{per[b]:>13.4f}" for b in backends)
        line += "".join(f"{per[a] / per[b]:>10.1f}x" for a, b in ratio_cols)
        calls = len(severities) * (row["cells"] if name == "grid" else 1)
        line += "".join(f"{calls / per[b]:>14.1f}" for b in torch_backends)
        lines.append(line)
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2,
                        help="photographs for imagecorruptions and numpy (default 2)")
    parser.add_argument("--batch", type=int, default=None,
                        help="torch batch size, the photographs repeated (default: --images)")
    parser.add_argument("--size", nargs=2, type=int, default=(480, 640), metavar=("H", "W"),
                        help="image size (default 480 640)")
    parser.add_argument("--corruptions", nargs="+", default=["benchmark"],
                        help="corruption names and/or groups (default benchmark: the 15)")
    parser.add_argument("--severities", nargs="+", type=int, default=list(SEVERITIES),
                        choices=SEVERITIES, help="severities (default 1 2 3 4 5)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="repeat each measurement, keep the fastest (default 1)")
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="torch CPU thread counts to time (default: torch's default)")
    parser.add_argument("--rng-device", choices=("cpu", "images"), default="cpu",
                        help="where torch draws random numbers (default cpu: same on any device)")
    parser.add_argument("--skip-reference", action="store_true",
                        help="do not time imagecorruptions (the slow part)")
    parser.add_argument("--skip-numpy", action="store_true", help="do not time the numpy backend")
    parser.add_argument("--quick", action="store_true",
                        help="1 image, 240x320, severities 1 and 5 (about a minute)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.size, args.severities = 1, (240, 320), [1, 5]

    import torch

    names = resolve_corruptions(args.corruptions)
    photos = load_images(args.images, *args.size)
    images = [image for _, image in photos]
    batch_size = args.batch or len(images)
    stacked = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    batch = stacked.repeat((batch_size + len(images) - 1) // len(images), 1, 1, 1)[:batch_size]
    default_threads = torch.get_num_threads()
    thread_counts = {}  # backend -> torch CPU threads
    if args.threads:
        thread_counts = {f"torch-cpu-{t}t": t for t in args.threads}
    else:
        thread_counts = {"torch-cpu": default_threads}
    batches = {backend: batch.contiguous() for backend in thread_counts}
    if torch.cuda.is_available():
        batches["torch-cuda"] = batch.cuda().contiguous()
        thread_counts["torch-cuda"] = default_threads
    backends = ([] if args.skip_reference else ["imagecorruptions"])
    backends += ([] if args.skip_numpy else ["numpy"]) + list(batches)
    n_images = {b: (batch_size if b in batches else len(images)) for b in backends}
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(f"{len(names)} corruptions x severities {args.severities}, "
          f"{args.size[0]}x{args.size[1]}: "
          f"{len(images)} photograph(s) ({', '.join(n for n, _ in photos)}) for "
          f"imagecorruptions/numpy, torch batch {batch_size}; torch {torch.__version__}, "
          f"CPU threads {sorted(set(thread_counts.values()))}, CUDA device: {device}; rng on "
          f"{args.rng_device}; best of {args.repeat}", flush=True)

    reference = None
    if "imagecorruptions" in backends:
        from _imagecorruptions_compat import load_reference

        reference = load_reference()
    rows = {}
    for name in names:
        row = {}
        if reference is not None:
            row["imagecorruptions"] = time_reference(reference, name, images, args.severities,
                                                     args.repeat)
        if "numpy" in backends:
            row["numpy"] = time_numpy(name, images, args.severities, args.repeat)
        for backend, tensor in batches.items():
            row[backend] = time_torch(name, tensor, args.severities, args.repeat,
                                      args.rng_device, thread_counts[backend])
        rows[name] = row
        print("  " + name + ": " + ", ".join(f"{b} {row[b] / n_images[b]:.3f} s/img"
                                             for b in backends), flush=True)
    rows["grid"] = {b: sum(rows[n][b] for n in names) for b in backends}
    rows["grid"]["cells"] = len(names)
    print(format_table(rows, backends, n_images, args.severities))
    if args.json:
        payload = {"images": [n for n, _ in photos], "size": list(args.size),
                   "batch": batch_size, "severities": args.severities, "repeat": args.repeat,
                   "seconds_total": rows, "images_per_backend": n_images,
                   "python": platform.python_version(), "machine": platform.machine(),
                   "numpy": np.__version__, "torch": torch.__version__,
                   "threads": thread_counts, "cuda_device": device,
                   "rng_device": args.rng_device, "date": time.strftime("%Y-%m-%d")}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
