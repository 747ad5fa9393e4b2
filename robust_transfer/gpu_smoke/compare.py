"""The GPU smoke's checks: device results against reference results within stated tolerances.

Tolerances (absolute, per cell; :data:`TOLERANCES`). The same checkpoint gives slightly
different numbers on a GPU because (a) cuDNN picks other convolution algorithms and cuBLAS
other reduction orders than the CPU kernels, and on Ampere and newer GPUs cuDNN convolutions run
in TF32 by default (``torch.backends.cudnn.allow_tf32``: a 10-bit mantissa, ~1e-3 relative
error per layer); (b) mmcv's CUDA RoIAlign and nms sum and break ties in another order; (c) in
batch mode the corruption itself runs on the GPU, where the torch backend is within 1 grey level
of the CPU (no pixel off by more than 2, measured for issue 12). Pipeline mode feeds both devices
the same bytes, so only (a) and (b) apply. Such differences move a score or a logit by about
1e-3, which changes a metric only where two candidates are that close: a detection crossing an
IoU threshold or two scores swapping, a pixel or an image whose top two classes nearly tie. On
the smoke's handful of images:

* COCO box and mask AP (0-1 scale), 8 images with 14 objects of 4 classes: one object's match
  flipping at one of the 10 IoU thresholds moves its class's AP there by up to ~1/4, the mean AP
  by ~1/4/10/4 = 0.006; 0.03 allows about five such flips;
* mIoU (percent), 4 images of 64x80: a class region of a few hundred pixels loses ~0.3 points
  of IoU per dozen flipped pixels; 2.0 points. Pixel accuracy aAcc: 1.0 point (~200 pixels);
* CIFAR top-1 (percent), 40 images: one image is 2.5 points; 5.0 allows two flips.

A broken device path (wrong normalisation, resize, colour order or corruption) moves these
metrics by far more, and the device-trained models must first reach :data:`MIN_CLEAN` on clean
data (several times the tolerances), so a broken model cannot pass for lack of anything left to
differ. With ``--device cpu --reference-device cpu`` (the tests) the two runs
must agree exactly. No GPU was available when these were chosen: the summary prints the largest
difference seen per metric so they can be tightened from measurements.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

#: the two ways the tools apply corruptions, each compared between the devices
MODES = ("pipeline", "batch")
#: metrics compared per task (the first one must be above 0 on clean data: the model learned)
TASK_METRICS = {"detection": ("bbox_mAP", "segm_mAP"), "segmentation": ("mIoU", "aAcc"),
                "classification": ("top1",)}

#: clean values the device-trained models must exceed (``--min-clean-scale`` scales them): several
#: times the tolerances, so a device path that breaks a model (metric near 0) cannot pass the
#: comparison by having nothing left to differ in
MIN_CLEAN = {"bbox_mAP": 0.1, "mIoU": 30.0, "top1": 50.0}


@dataclass(frozen=True)
class Tolerance:
    """The largest absolute difference allowed for ``metric`` between the two devices."""

    metric: str
    max_abs_diff: float
    why: str


TOLERANCES = {t.metric: t for t in (
    Tolerance("bbox_mAP", 0.03, "COCO AP 0-1, 8 images: ~5 IoU-threshold flips of ~0.006"),
    Tolerance("segm_mAP", 0.03, "COCO AP 0-1, 8 images: ~5 IoU-threshold flips of ~0.006"),
    Tolerance("mIoU", 2.0, "percent, 4 images of 64x80: dozens of near-tie pixels"),
    Tolerance("aAcc", 1.0, "percent, 4 images of 64x80: ~200 near-tie pixels"),
    Tolerance("top1", 5.0, "percent, 40 images: two near-tie images"),
)}


@dataclass
class Check:
    """One PASS/FAIL line of the summary."""

    name: str
    passed: bool
    detail: str
    diff: float | None = None
    metric: str | None = None

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.detail}"


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def compare_metric(name: str, metric: str, value, reference, tolerance: Tolerance) -> Check:
    """Compare one metric of one cell; a missing or NaN value fails with its reason."""
    got, ref = _number(value), _number(reference)
    if got is None or ref is None:
        which = "device" if got is None else "reference"
        return Check(name, False, f"{metric} missing or not a number in the {which} results "
                     f"(device {value!r}, reference {reference!r})", metric=metric)
    diff = abs(got - ref)
    passed = diff <= tolerance.max_abs_diff
    return Check(name, passed, f"{metric} {got:.4f} vs {ref:.4f}, |diff| {diff:.4f} "
                 f"{'<=' if passed else '>'} {tolerance.max_abs_diff:g}", diff=diff, metric=metric)


def compare_results(label: str, device_doc: Mapping, reference_doc: Mapping, metrics: Sequence[str],
                    tolerances: Mapping[str, Tolerance] = TOLERANCES) -> list[Check]:
    """One check per (cell of the reference results, metric); a cell the device results lack
    fails, and so does a metric without a tolerance."""
    checks = []
    device_cells = device_doc.get("cells", {})
    for corruption, by_severity in sorted(reference_doc.get("cells", {}).items()):
        for severity, reference_cell in sorted(by_severity.items()):
            name = f"{label} {corruption}@{severity}"
            device_cell = device_cells.get(corruption, {}).get(severity)
            if device_cell is None:
                checks.append(Check(name, False, "cell missing in the device results"))
                continue
            for metric in metrics:
                if metric not in tolerances:
                    checks.append(Check(name, False, f"no tolerance stated for {metric}"))
                    continue
                checks.append(compare_metric(name, metric, device_cell.get(metric),
                                             reference_cell.get(metric), tolerances[metric]))
    if not checks:
        checks.append(Check(label, False, "the reference results hold no cells"))
    return checks


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def result_checks(args: argparse.Namespace) -> list[Check]:
    """Recorded modes, a model that learned, and device-vs-reference comparisons."""
    out, dev, ref = Path(args.out) / "eval", "device", "reference"
    checks = []
    runs = [(f"{task}/{mode}", f"{task}_{mode}.json", task, mode)
            for task in ("detection", "segmentation") for mode in MODES]
    runs.append(("classification/device-batch", "classification.json", "classification", "device-batch"))
    for label, file, task, mode in runs:
        device_doc, reference_doc = _load(out / dev / file), _load(out / ref / file)
        if device_doc is None or reference_doc is None:
            missing = out / (dev if device_doc is None else ref) / file
            checks.append(Check(label, False, f"no results at {missing} (see the tool's log)"))
            continue
        recorded = (device_doc.get("backend"), device_doc.get("extra", {}).get("corrupt_on"))
        expected = {"pipeline": ("numpy", "pipeline"), "batch": ("torch-batch", "batch"),
                    "device-batch": ("torch", "device-batch")}[mode]
        checks.append(Check(f"{label} recorded", recorded == expected,
                            f"backend {recorded[0]}, corrupt_on {recorded[1]} (expected {expected[0]}, "
                            f"{expected[1]})"))
        primary = TASK_METRICS[task][0]
        clean = _number(device_doc.get("cells", {}).get("clean", {}).get("0", {}).get(primary))
        floor = MIN_CLEAN[primary] * args.min_clean_scale
        checks.append(Check(f"{label} learned on {args.device}", clean is not None and clean > floor,
                            f"clean {primary} {clean} > {floor:g}"))
        checks += compare_results(f"{label} {args.device} vs {args.reference_device}", device_doc,
                                  reference_doc, TASK_METRICS[task])
    return checks


def largest_differences(checks: Sequence[Check]) -> dict[str, float]:
    """The largest |device - reference| per metric over the comparisons that ran."""
    largest: dict[str, float] = {}
    for check in checks:
        if check.metric is not None and check.diff is not None:
            largest[check.metric] = max(largest.get(check.metric, 0.0), check.diff)
    return largest
