"""The embedded default run: every corruption on scikit-image's real photographs.

It exercises the same grid runner, results schema and report as the task evaluations, with an
image-quality "task": the structural similarity (SSIM) between each corrupted photograph and its
clean version (1.0 on the clean cell), so P / mPC / rPC read as "how much of the image
structure survives the corruption".
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .corruptions import corrupt
from .grid import Cell, build_cells, run_grid
from .results import new_results

#: Colour photographs shipped inside scikit-image (no download needed).
DEMO_IMAGES = ("astronaut", "chelsea", "coffee", "rocket")


def load_demo_images(short_side: int = 224) -> dict[str, np.ndarray]:
    """The demo photographs as uint8 RGB arrays, resized so the short side is ``short_side``."""
    from PIL import Image
    from skimage import data

    images = {}
    for name in DEMO_IMAGES:
        array = getattr(data, name)()
        h, w = array.shape[:2]
        scale = short_side / min(h, w)
        size = (max(32, round(w * scale)), max(32, round(h * scale)))
        images[name] = np.asarray(Image.fromarray(array).resize(size, Image.BICUBIC))
    return images


def image_similarity(clean: np.ndarray, corrupted: np.ndarray) -> dict[str, float]:
    """SSIM and PSNR (dB) of a corrupted image against its clean version."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    ssim = structural_similarity(clean, corrupted, channel_axis=-1, data_range=255)
    metrics = {"ssim": float(ssim)}
    if not np.array_equal(clean, corrupted):
        metrics["psnr"] = float(peak_signal_noise_ratio(clean, corrupted, data_range=255))
    return metrics


def run_demo(out_dir: str | Path = "outputs/demo", *, corruptions="all",
             severities=(0, 1, 2, 3, 4, 5), seed: int = 0, backend: str = "numpy",
             image_size: int = 224, resume: bool = True) -> dict:
    """Corrupt the demo photographs over the grid, then write results, a report and a preview.

    Returns the paths written (``results``, ``report``, ``preview``).
    """
    from .corruptions.preview import make_preview_grid
    from .report import write_report

    out = Path(out_dir)
    images = load_demo_images(image_size)
    cells = build_cells(corruptions, severities)
    results = new_results(task="image-similarity", model=f"skimage-photos-{backend}",
                          backbone="skimage photographs", transfer_mode=f"{backend} backend",
                          dataset="skimage.data photographs",
                          seed=seed, backend=backend, metrics=["ssim"], metric_scale=1.0,
                          extra={"images": list(images), "image_size": image_size})

    def evaluate(cell: Cell) -> dict[str, float]:
        per_image = []
        for name, image in images.items():
            corrupted = image if cell.is_clean else corrupt(
                image, cell.corruption, cell.severity, seed=seed, key=name, backend=backend)
            per_image.append(image_similarity(image, corrupted))
        keys = set.intersection(*(set(m) for m in per_image))
        return {k: float(np.mean([m[k] for m in per_image])) for k in sorted(keys)}

    start = time.perf_counter()
    results_path = out / "results" / "demo.json"
    run_grid(cells, evaluate, results, results_path, resume=resume, images_per_cell=len(images))
    written = write_report([results], out / "report", title="Demo: SSIM of corrupted photographs")
    preview = out / "preview_severity3.png"
    names = [c.corruption for c in cells if not c.is_clean]
    make_preview_grid(images["astronaut"], list(dict.fromkeys(names)), [3], preview, seed=seed,
                      backend=backend)
    print(written["terminal"])
    print(f"\nresults: {results_path.resolve()}\nreport:  {(out / 'report').resolve()}"
          f"\npreview: {preview.resolve()}\n({time.perf_counter() - start:.0f} s)")
    return {"results": results_path, "report": out / "report", "preview": preview}
