"""Robustness metrics over a (corruption x severity) grid of results.

Definitions (Michaelis et al. 2019; Hendrycks & Dietterich 2019):

* ``P``   -- performance on clean data (the severity-0 cell).
* ``mPC`` -- mean performance under corruption, over the corruptions in scope and
  severities 1..5.
* ``rPC`` -- ``mPC / P``.
* ``CE``/``mCE`` -- corruption error normalised by AlexNet's error on the same corruption;
  relative mCE additionally subtracts each model's clean error.

A cell that was not evaluated is never averaged in as zero (the bug of mmdet's
``robustness_eval.py`` when a subset of severities ran): means run over the cells that exist,
and the missing ones are listed in :attr:`Summary.missing`, so a report can flag them. Which
cells are "in scope" is the grid the run planned (:func:`summarize_document` reads it from the
results): the study itself evaluated severity 1 only, and such a run is complete. Every
:class:`Summary` carries the corruptions and severities its means cover (:func:`scope_text`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from .corruptions import CORRUPTION_GROUPS, SEVERITIES

CLEAN = "clean"
CLEAN_SEVERITY = 0

#: AlexNet top-1 error per ImageNet-C corruption, averaged over severities 1..5
#: (Hendrycks & Dietterich, ICLR 2019), the normaliser of mCE.
ALEXNET_ERRORS: dict[str, float] = {
    "gaussian_noise": 0.886428, "shot_noise": 0.894468, "impulse_noise": 0.922640,
    "defocus_blur": 0.819880, "glass_blur": 0.826268, "motion_blur": 0.785948,
    "zoom_blur": 0.798360, "snow": 0.866816, "frost": 0.826572, "fog": 0.819324,
    "brightness": 0.564592, "contrast": 0.853204, "elastic_transform": 0.646056,
    "pixelate": 0.717840, "jpeg_compression": 0.606500,
}
#: AlexNet's clean top-1 error, used by relative mCE.
ALEXNET_CLEAN_ERROR = 0.4348

#: Groups reported as per-group means, in report order.
REPORT_GROUPS = ("noise", "blur", "weather", "digital", "holdout")

Cells = Mapping[str, Mapping[int, Mapping[str, float]]]


@dataclass
class Summary:
    """P / mPC / rPC and their breakdowns for one metric of one results grid."""

    metric: str
    P: float | None
    mPC: float | None
    rPC: float | None
    per_corruption: dict[str, float] = field(default_factory=dict)
    per_severity: dict[int, float] = field(default_factory=dict)
    per_group: dict[str, float] = field(default_factory=dict)
    missing: list[tuple[str, int]] = field(default_factory=list)
    corruptions: list[str] = field(default_factory=list)  # the scope the means cover
    severities: list[int] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every cell in scope was evaluated."""
        return not self.missing and self.P is not None

    def as_dict(self) -> dict:
        """JSON-friendly form (severity keys as strings)."""
        return {
            "metric": self.metric, "P": self.P, "mPC": self.mPC, "rPC": self.rPC,
            "per_corruption": dict(self.per_corruption),
            "per_severity": {str(k): v for k, v in self.per_severity.items()},
            "per_group": dict(self.per_group),
            "missing": [list(m) for m in self.missing],
            "corruptions": list(self.corruptions), "severities": list(self.severities),
        }


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def cell_value(cells: Cells, corruption: str, severity: int, metric: str) -> float | None:
    """The value of ``metric`` in one cell, or None when the cell (or metric) is missing."""
    by_severity = cells.get(corruption) or {}
    cell = by_severity.get(severity)
    if cell is None:
        cell = by_severity.get(str(severity))  # cells straight from JSON
    if cell is None or metric not in cell:
        return None
    value = cell[metric]
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def clean_value(cells: Cells, metric: str) -> float | None:
    """The clean (severity 0) performance."""
    return cell_value(cells, CLEAN, CLEAN_SEVERITY, metric)


def summarize(cells: Cells, metric: str, corruptions: Iterable[str] | None = None,
              severities: Iterable[int] = SEVERITIES) -> Summary:
    """P, mPC and rPC of ``metric`` over ``corruptions`` x ``severities``.

    ``corruptions`` defaults to the 15 benchmark corruptions, as in the papers; pass
    ``CORRUPTION_GROUPS["all"]`` to include the hold-out set. Per-group means are computed over
    every group that has at least one evaluated cell, independently of ``corruptions``.
    """
    scope = list(CORRUPTION_GROUPS["benchmark"] if corruptions is None else corruptions)
    severities = [int(s) for s in severities]
    p = clean_value(cells, metric)
    missing: list[tuple[str, int]] = [] if p is not None else [(CLEAN, CLEAN_SEVERITY)]
    in_scope: list[float] = []
    per_corruption: dict[str, float] = {}
    per_severity_values: dict[int, list[float]] = {s: [] for s in severities}
    for corruption in scope:
        values = []
        for severity in severities:
            value = cell_value(cells, corruption, severity, metric)
            if value is None:
                missing.append((corruption, severity))
                continue
            values.append(value)
            per_severity_values[severity].append(value)
        if values:
            per_corruption[corruption] = _mean(values)
        in_scope.extend(values)
    per_group = {}
    for group in REPORT_GROUPS:
        values = [v for c in CORRUPTION_GROUPS[group] for s in severities
                  if (v := cell_value(cells, c, s, metric)) is not None]
        if values:
            per_group[group] = _mean(values)
    mpc = _mean(in_scope)
    rpc = mpc / p if (mpc is not None and p) else None
    per_severity = {s: m for s, vals in per_severity_values.items() if (m := _mean(vals)) is not None}
    return Summary(metric, p, mpc, rpc, per_corruption, per_severity, per_group, missing,
                   scope, severities)


def summarize_document(results: Mapping, corruptions: Iterable[str] | None = None) -> dict[str, Summary]:
    """{metric: Summary} of a results document over the grid its run planned.

    ``corruptions`` is the report's scope (default: the 15 benchmark corruptions); it is cut
    down to the corruptions the run planned, and the severities are the planned ones
    (:func:`robust_transfer.results.planned_grid`), so only a planned cell that is absent counts
    as missing. Files that do not record their grid are summarised over severities 1..5.
    """
    from .results import cells_by_int_severity, planned_grid

    scope = list(CORRUPTION_GROUPS["benchmark"] if corruptions is None else corruptions)
    planned_corruptions, planned_severities = planned_grid(results)
    if planned_corruptions is not None:
        scope = [c for c in scope if c in planned_corruptions]
    severities = planned_severities or list(SEVERITIES)
    cells = cells_by_int_severity(results)
    return {m: summarize(cells, m, scope, severities) for m in results["metrics"]}


def severities_text(severities: Sequence[int]) -> str:
    """``severity 1``, ``severities 1-5`` or ``severities 1, 3, 5``."""
    levels = sorted(int(s) for s in severities)
    if len(levels) == 1:
        return f"severity {levels[0]}"
    if levels == list(range(levels[0], levels[-1] + 1)):
        return f"severities {levels[0]}-{levels[-1]}"
    return "severities " + ", ".join(map(str, levels))


def scope_text(summary: Summary) -> str:
    """What the summary's mPC averages, e.g. ``15 corruptions x severity 1``."""
    count = len(summary.corruptions)
    return (f"{count} corruption{'s' if count != 1 else ''} x "
            f"{severities_text(summary.severities) if summary.severities else 'no severity'}")


def corruption_errors(cells: Cells, metric: str, scale: float = 1.0,
                      severities: Iterable[int] = SEVERITIES) -> dict[str, float]:
    """CE per benchmark corruption: the model's mean error over severities / AlexNet's.

    ``metric`` is an accuracy; ``scale`` is its full-scale value (1 for fractions, 100 for
    percent). Corruptions without any evaluated severity are left out.
    """
    errors = {}
    for corruption, alexnet_error in ALEXNET_ERRORS.items():
        values = [v for s in severities if (v := cell_value(cells, corruption, s, metric)) is not None]
        if values:
            errors[corruption] = (1.0 - _mean(values) / scale) / alexnet_error
    return errors


def mean_corruption_error(cells: Cells, metric: str, scale: float = 1.0,
                          severities: Iterable[int] = SEVERITIES) -> float | None:
    """mCE: the mean of :func:`corruption_errors` (None when nothing was evaluated)."""
    return _mean(list(corruption_errors(cells, metric, scale, severities).values()))


def relative_mean_corruption_error(cells: Cells, metric: str, scale: float = 1.0,
                                   severities: Iterable[int] = SEVERITIES) -> float | None:
    """Relative mCE: error increase over clean, normalised by AlexNet's increase."""
    p = clean_value(cells, metric)
    if p is None:
        return None
    clean_error = 1.0 - p / scale
    ratios = []
    for corruption, alexnet_error in ALEXNET_ERRORS.items():
        values = [v for s in severities if (v := cell_value(cells, corruption, s, metric)) is not None]
        if values:
            error = 1.0 - _mean(values) / scale
            ratios.append((error - clean_error) / (alexnet_error - ALEXNET_CLEAN_ERROR))
    return _mean(ratios)


#: Labels of the two corruption-error numbers, so every report names which one it prints.
MCE_ALEXNET_LABEL = "mCE (AlexNet-normalised)"
MEAN_CORRUPTION_ERROR_LABEL = "mean corruption error (unnormalised)"


def is_imagenet_dataset(dataset: str | None) -> bool:
    """True for ImageNet(-C) evaluations, the only data the AlexNet reference errors were
    measured on (dataset names such as ``imagenet``, ``imagenet_val``, ``ImageNet-C``)."""
    return bool(dataset) and "imagenet" in str(dataset).lower().replace("-", "").replace("_", "")


def plain_mean_corruption_error(cells: Cells, metric: str, scale: float = 1.0,
                                severities: Iterable[int] = SEVERITIES) -> float | None:
    """The mean error (1 - accuracy) over the evaluated benchmark corruption cells, without
    any reference normaliser: what can be said of a data set with no reference model."""
    errors = [1.0 - v / scale for c in CORRUPTION_GROUPS["benchmark"] for s in severities
              if (v := cell_value(cells, c, s, metric)) is not None]
    return _mean(errors)


def corruption_error_for_dataset(cells: Cells, metric: str, dataset: str | None,
                                 scale: float = 1.0) -> tuple[str, float | None]:
    """(label, value) of the corruption error that means something for ``dataset``.

    AlexNet's reference errors are ImageNet-C's, so the AlexNet-normalised mCE is given for
    ImageNet data only; any other data set (CIFAR-10, the synthetic stand-ins) gets the plain
    mean corruption error, and the label says which of the two it is.
    """
    if is_imagenet_dataset(dataset):
        return MCE_ALEXNET_LABEL, mean_corruption_error(cells, metric, scale)
    return MEAN_CORRUPTION_ERROR_LABEL, plain_mean_corruption_error(cells, metric, scale)
