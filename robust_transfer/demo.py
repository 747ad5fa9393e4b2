"""The embedded default run, ``robust-transfer demo``: the whole study in miniature.

:func:`run_demo` runs the benchmark suite ``configs/demo.yaml`` through the reproduction runner
(:mod:`robust_transfer.study`) -- the same plan, tools and report as the paper's tables, on
synthetic data sets for the three tasks and two small stand-in ImageNet backbones (one
pre-trained plainly, one with noise augmentation), each transferred fixed-feature and
full-network to detection, segmentation and classification and evaluated on the 15 benchmark
corruptions x 5 severities. It prints one paper-shaped table per transfer mode and the
pre-training robustness next to the downstream rPC, and leaves the Markdown / LaTeX / CSV
tables and PNG plots in ``<out>/report``. ``RT_DEMO_SCALE=ci`` evaluates fewer images (CI).

:func:`run_photo_demo` (``robust-transfer demo --photos``) is the corruption library on its
own: every corruption on scikit-image's real photographs, scored by the structural similarity
(SSIM) between each corrupted photograph and its clean version, through the same grid runner,
results schema and report as the task evaluations.
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


def run_photo_demo(out_dir: str | Path = "outputs/demo_photos", *, corruptions="all",
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


# ----------------------------------------------------------------------------- the study demo

DEMO_SUITE = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
#: The headline metric of each task in the demo's terminal tables (all are in the report files).
HEADLINES = {"detection": ("bbox_mAP", "box AP"), "segmentation": ("mIoU", "mIoU"),
             "classification": ("top1", "top-1")}


def run_demo(out_dir: str | Path = "outputs/demo", *, scale: str | None = None,
             jobs: int | None = None, fresh: bool = False, suite: str | Path = DEMO_SUITE) -> int:
    """Run the miniature study (``configs/demo.yaml``) into ``out_dir``; print its tables.

    ``scale`` (else the environment variable ``RT_DEMO_SCALE``, else the suite's) picks the data
    set sizes of :data:`robust_transfer.standins.DATA_SCALES` (``demo``; ``ci`` evaluates fewer
    images). Rerunning skips everything already done; ``fresh`` starts over. Returns the exit
    status.
    """
    import os
    import shutil

    from .study import Options, run_suite

    layout = demo_layout(out_dir)
    if fresh:
        for folder in (layout.root, layout.report_dir):
            shutil.rmtree(folder, ignore_errors=True)
    start = time.perf_counter()
    options = Options(work_dir=str(layout.root), report_dir=str(layout.report_dir), jobs=jobs,
                      data_scale=scale or os.environ.get("RT_DEMO_SCALE") or None,
                      stream_report=False)
    code = run_suite(suite, options)
    print_demo_tables(out_dir)
    print(f"\nreport (HTML, open in a browser): {(layout.report_dir / 'report.html').resolve()}")
    print(f"\nreport (Markdown, LaTeX, CSV, PNG plots): {layout.report_dir.resolve()}"
          f"\nresults: {layout.results_dir.resolve()}"
          f"\n({time.perf_counter() - start:.0f} s{'' if code == 0 else '; some steps failed, see above'})")
    return code


def demo_layout(out_dir: str | Path):
    """The demo's work dir (``<out>/work``) and report (``<out>/report``)."""
    from .study.layout import Layout

    out = Path(out_dir)
    return Layout.at(out / "work", out / "report")


def print_demo_tables(out: str | Path, suite_name: str = "demo") -> None:
    """One paper-shaped table per transfer mode (rows: backbones; per task P / mPC / rPC of its
    headline metric), then the pre-training robustness of each backbone next to its downstream
    rPC and the rank correlations the report computed."""
    import json

    from .report import summarize_results, terminal_table
    from .results import load_results
    from .tables import prc_table

    layout = demo_layout(out)
    models = [summarize_results(load_results(f)) for f in layout.results_files()]
    if not models:
        print("no results yet")
        return
    tasks = [t for t in HEADLINES if any(m.task == t for m in models)]
    robustness = {}
    table_file = layout.robustness_table(suite_name)
    if table_file.is_file():
        robustness = json.loads(table_file.read_text()).get("values", {})
    backbones = list(dict.fromkeys([b for b in robustness] + [m.results.get("backbone") for m in models]))
    modes = list(dict.fromkeys(m.results.get("transfer_mode") for m in models))

    def scored(backbone, mode, column=lambda task: task):  # {column: (headline summary, scale)}
        found = {}
        for m in models:
            if m.results.get("backbone") == backbone and m.results.get("transfer_mode") == mode \
                    and column(m.task) not in found:
                found[column(m.task)] = (m.summaries.get(HEADLINES[m.task][0]), m.scale)
        return found

    def label(task):
        return HEADLINES[task][1]

    print("\nP = clean, mPC = mean over the 15 corruptions x 5 severities, rPC = mPC / P (%). "
          "detection: synthetic COCO (box AP); segmentation: synthetic ADE20K (mIoU); "
          "classification: synthetic CIFAR-10 (top-1).")
    for mode in modes:
        rows = [([backbone], scored(backbone, mode, label), []) for backbone in backbones]
        header, body = prc_table(["backbone"], [label(t) for t in tasks], rows)
        print("\n" + terminal_table(header, body, f" {mode} transfer "))
    if robustness:
        rows = [([mode, backbone, f"{robustness[backbone]:.1f}" if backbone in robustness else "–"],
                 scored(backbone, mode), []) for mode in modes for backbone in backbones]
        header, body = prc_table(["transfer", "backbone", "pre-training rPC"], tasks, rows, parts=("rPC",))
        print("\n" + terminal_table(header, body, " does pre-training robustness transfer? "))
        correlation = layout.report_dir / "transfer_correlation.md"
        if correlation.is_file():
            print(f"(rank correlations per task, metric and mode: {correlation.resolve()})")
