"""Time the corruption library against imagecorruptions 1.1.2, side by side in one run.

For each corruption: the time for all chosen severities on each image, for the reference
(imagecorruptions, run through the test shim) and for ours (numpy backend, exact mode), the
ratio reference / ours, and the largest pixel difference between the two outputs given the same
random draws (impulse_noise cannot share draws and is marked "stat"). The last row is the whole
grid (the chosen corruptions x severities).

Images: real photographs from scikit-image (astronaut, coffee, chelsea, ...) resized to 480x640.

Runtime: the reference's glass_blur alone takes ~1.5 minutes per 480x640 image for the five
severities (a per-pixel Python loop), so the default (2 images, the 15 benchmark corruptions,
severities 1-5, one repeat) takes about 4-6 minutes on one core. ``--quick`` (1 image at
240x320, severities 1 and 5) takes well under a minute.

    .venv/bin/python bench/bench_corruptions.py [--quick] [--images N] [--corruptions benchmark]
        [--severities 1 2 3 4 5] [--repeat R] [--size 480 640] [--json OUT.json]
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

from robust_transfer.corruptions import SEVERITIES, corrupt_with_rng, resolve_corruptions  # noqa: E402

PHOTOGRAPHS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field")


def load_images(count: int, height: int, width: int) -> list[tuple[str, np.ndarray]]:
    """The first ``count`` photographs of PHOTOGRAPHS, resized to height x width."""
    import skimage.data
    from PIL import Image

    if not 1 <= count <= len(PHOTOGRAPHS):
        raise SystemExit(f"--images must be 1..{len(PHOTOGRAPHS)}")
    images = []
    for name in PHOTOGRAPHS[:count]:
        photo = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        images.append((name, np.asarray(photo.resize((width, height), Image.LANCZOS))))
    return images


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bench_corruption(reference, name, images, severities, repeat) -> dict:
    """Best-of-``repeat`` total seconds for reference and ours, and the max pixel difference."""
    ref_best = ours_best = float("inf")
    max_diff = 0
    for _ in range(repeat):
        ref_total = ours_total = 0.0
        for index, (_, image) in enumerate(images):
            for severity in severities:
                seed = 1000 * index + severity
                np.random.seed(seed)  # the reference draws from the global state
                ref_time, theirs = _timed(lambda: reference.corrupt(image, severity, name))
                rng = np.random.RandomState(seed)  # seeding is outside the timing for both
                ours_time, ours = _timed(lambda: corrupt_with_rng(image, name, severity, rng))
                ref_total += ref_time
                ours_total += ours_time
                diff = np.abs(ours.astype(np.int16) - theirs.astype(np.int16)).max()
                max_diff = max(max_diff, int(diff))
        ref_best, ours_best = min(ref_best, ref_total), min(ours_best, ours_total)
    return {"reference_s": ref_best, "ours_s": ours_best, "ratio": ref_best / ours_best,
            "max_abs_diff": None if name == "impulse_noise" else max_diff}


def format_table(rows: dict, grid: dict, n_images: int, severities) -> str:
    header = (f"{'corruption':<18} {'imagecorruptions s':>18} {'ours s':>9} {'ratio':>8} "
              f"{'max|diff|':>9}")
    lines = [f"per corruption: {len(severities)} severities x {n_images} image(s)", header,
             "-" * len(header)]
    for name, row in rows.items():
        diff = "stat" if row["max_abs_diff"] is None else str(row["max_abs_diff"])
        lines.append(f"{name:<18} {row['reference_s']:>18.3f} {row['ours_s']:>9.3f} "
                     f"{row['ratio']:>7.1f}x {diff:>9}")
    lines.append("-" * len(header))
    lines.append(f"{'grid (all above)':<18} {grid['reference_s']:>18.3f} {grid['ours_s']:>9.3f} "
                 f"{grid['ratio']:>7.1f}x")
    per_image = grid["reference_s"] / n_images, grid["ours_s"] / n_images
    lines.append(f"per image: imagecorruptions {per_image[0]:.2f} s, ours {per_image[1]:.2f} s")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2,
                        help="number of photographs (default 2: astronaut, coffee)")
    parser.add_argument("--corruptions", nargs="+", default=["benchmark"],
                        help="corruption names and/or groups (default benchmark: the 15)")
    parser.add_argument("--severities", nargs="+", type=int, default=list(SEVERITIES),
                        choices=SEVERITIES, help="severities (default 1 2 3 4 5)")
    parser.add_argument("--size", nargs=2, type=int, default=(480, 640), metavar=("H", "W"),
                        help="image size (default 480 640)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="repeat each measurement, keep the fastest (default 1)")
    parser.add_argument("--quick", action="store_true",
                        help="1 image, 240x320, severities 1 and 5 (under a minute)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.size, args.severities = 1, (240, 320), [1, 5]

    from _imagecorruptions_compat import load_reference

    reference = load_reference()
    names = resolve_corruptions(args.corruptions)
    images = load_images(args.images, *args.size)
    print(f"{len(names)} corruptions x severities {args.severities} on {len(images)} "
          f"{args.size[0]}x{args.size[1]} image(s) ({', '.join(n for n, _ in images)}), "
          f"best of {args.repeat}", flush=True)
    rows = {}
    for name in names:
        rows[name] = bench_corruption(reference, name, images, args.severities, args.repeat)
        print(f"  {name}: {rows[name]['ratio']:.1f}x", flush=True)
    grid_ref = sum(r["reference_s"] for r in rows.values())
    grid_ours = sum(r["ours_s"] for r in rows.values())
    grid = {"reference_s": grid_ref, "ours_s": grid_ours, "ratio": grid_ref / grid_ours}
    print(format_table(rows, grid, len(images), args.severities))
    if args.json:
        payload = {"images": [n for n, _ in images], "size": list(args.size),
                   "severities": args.severities, "repeat": args.repeat, "corruptions": rows,
                   "grid": grid, "python": platform.python_version(),
                   "machine": platform.machine(), "numpy": np.__version__}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
