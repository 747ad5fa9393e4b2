"""One results schema for every task: a JSON file per (model, evaluation), written atomically.

Layout (numbers are numbers, never strings)::

    {
      "schema": "robust-transfer/results", "schema_version": 1,
      "task": "detection", "model": "mask_rcnn_r50_fpn_regular_full_network",
      "backbone": "regular", "transfer_mode": "full-network",
      "config": "...", "checkpoint": "...", "checkpoint_sha256": "...",
      "dataset": "coco_val2017", "seed": 0, "backend": "numpy",
      "seed_scheme": "robust_transfer.corruptions/v1",
      "metrics": ["bbox_mAP", "segm_mAP"], "primary_metric": "bbox_mAP", "metric_scale": 1.0,
      "versions": {"torch": "2.14.1", ...}, "extra": {...},
      "grid": {"corruptions": ["fog", ...], "severities": [0, 1]},
      "cells": {"clean": {"0": {"bbox_mAP": 0.373}}, "fog": {"1": {...}, ...}}
    }

Severity 0 is the clean cell and lives under the corruption key ``"clean"``. ``grid`` is the
grid the run was asked for (written by :func:`robust_transfer.grid.run_grid`; severity 0 = the
clean cell): reports count a cell as missing only when it was planned and is absent
(:func:`planned_grid`), so a run of the study's severity 1 alone is complete. ``seed_scheme``
names how the backend turned seeds into random numbers (``corruptions.seed_scheme``); files
written before the field existed are read with the scheme their backend had then
(:func:`seed_scheme_of`), so old torch-backend results refuse to merge with new ones.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping

SCHEMA = "robust-transfer/results"
SCHEMA_VERSION = 1

#: Fields that identify one evaluation: shards and resumed runs must agree on all of them.
IDENTITY_FIELDS = ("task", "model", "config", "checkpoint_sha256", "dataset", "seed", "backend",
                   "seed_scheme")
_VERSIONED_PACKAGES = ("robust-transfer", "torch", "torchvision", "numpy", "mmengine", "mmcv",
                       "mmdet", "mmsegmentation", "imagecorruptions")


class ResultsError(ValueError):
    """A results file that cannot be used: wrong schema, truncated, or incompatible."""


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape the numbers (installed ones only)."""
    versions = {"python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes (used to pin the checkpoint a result came from)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def new_results(*, task: str, model: str, metrics: Iterable[str], primary_metric: str | None = None,
                backbone: str | None = None, transfer_mode: str | None = None,
                config: str | None = None, checkpoint: str | None = None,
                checkpoint_sha256: str | None = None, dataset: str | None = None, seed: int = 0,
                backend: str = "numpy", metric_scale: float = 1.0,
                seed_scheme: str | None = None,
                extra: Mapping[str, Any] | None = None) -> dict:
    """A results document with no cells yet.

    ``checkpoint_sha256`` is computed from ``checkpoint`` when that file exists and no hash
    is given. ``metric_scale`` is the full-scale value of the metrics (1 for fractions such as
    COCO AP, 100 for percentages such as mmseg's mIoU); mCE needs it to turn scores into errors.
    ``seed_scheme`` defaults to the current scheme of ``backend``.
    """
    metrics = list(metrics)
    if not metrics:
        raise ResultsError("a results file needs at least one metric name")
    if checkpoint_sha256 is None and checkpoint and Path(checkpoint).is_file():
        checkpoint_sha256 = file_sha256(checkpoint)
    return {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "task": task, "model": model, "backbone": backbone, "transfer_mode": transfer_mode,
        "config": config, "checkpoint": checkpoint, "checkpoint_sha256": checkpoint_sha256,
        "dataset": dataset, "seed": int(seed), "backend": backend,
        "seed_scheme": seed_scheme if seed_scheme is not None else current_seed_scheme(backend),
        "metrics": metrics, "primary_metric": primary_metric or metrics[0],
        "metric_scale": float(metric_scale),
        "versions": package_versions(), "extra": dict(extra or {}), "cells": {},
    }


def validate_results(results: Any, source: str = "results") -> dict:
    """Check the schema of a loaded document; raise :class:`ResultsError` naming the problem."""
    if not isinstance(results, dict):
        raise ResultsError(f"{source}: expected a JSON object, got {type(results).__name__}")
    if results.get("schema") != SCHEMA:
        raise ResultsError(f"{source}: not a robust-transfer results file "
                           f"(schema {results.get('schema')!r}, expected {SCHEMA!r})")
    if results.get("schema_version") != SCHEMA_VERSION:
        raise ResultsError(f"{source}: schema version {results.get('schema_version')!r} is not "
                           f"supported (this version reads {SCHEMA_VERSION})")
    for key in ("task", "model", "metrics", "cells"):
        if key not in results:
            raise ResultsError(f"{source}: missing field {key!r}")
    cells = results["cells"]
    if not isinstance(cells, dict):
        raise ResultsError(f"{source}: 'cells' must be an object")
    for corruption, by_severity in cells.items():
        for severity, cell in by_severity.items():
            if not str(severity).isdigit() or not 0 <= int(severity) <= 5:
                raise ResultsError(f"{source}: cell {corruption}/{severity}: severity must be 0..5")
            for metric, value in cell.items():
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    raise ResultsError(f"{source}: cell {corruption}/{severity} metric {metric!r} "
                                       f"is {value!r}, not a number")
    return results


def load_results(path: str | os.PathLike) -> dict:
    """Read and validate a results file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ResultsError(f"{path}: not valid JSON (truncated or corrupted file?): {error}") from None
    return validate_results(document, str(path))


def save_results(results: Mapping, path: str | os.PathLike) -> None:
    """Write ``results`` to ``path`` atomically: a temporary file in the same folder, fsynced,
    then renamed over the target, so a reader (or a killed writer) never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(results, handle, indent=1, sort_keys=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def get_cell(results: Mapping, corruption: str, severity: int) -> dict | None:
    """The metrics of one cell, or None when it has not been evaluated."""
    return results["cells"].get(corruption, {}).get(str(int(severity)))


def set_cell(results: dict, corruption: str, severity: int, metrics: Mapping[str, float]) -> None:
    """Store one cell's metrics (as plain floats)."""
    results["cells"].setdefault(corruption, {})[str(int(severity))] = {
        name: float(value) for name, value in metrics.items()}


def record_planned_grid(results: dict, cells: Iterable[tuple[str, int]]) -> None:
    """Record in ``results`` the grid a run was asked for: its corruptions and severities (0 =
    the clean cell), from the (corruption, severity) of every planned cell."""
    cells = list(cells)
    corruptions = list(dict.fromkeys(c for c, s in cells if int(s) > 0))
    results["grid"] = {"corruptions": corruptions,
                       "severities": sorted({int(s) for _, s in cells})}


def planned_grid(results: Mapping) -> tuple[list[str] | None, list[int] | None]:
    """(corruptions, severities 1..5) the run of ``results`` was asked for; None for what the
    file does not say. Both the ``grid`` field and the OpenMMLab robustness tool's ``extra``
    (``corruptions``, ``severities``: the whole request, also of a shard) count, so a shard file
    that recorded only its own cells still plans the whole grid."""
    grid = results.get("grid") if isinstance(results.get("grid"), Mapping) else {}
    extra = results.get("extra") or {}
    corruptions = list(grid.get("corruptions") or [])
    if extra.get("corruptions"):
        from .corruptions import resolve_corruptions

        try:
            corruptions += resolve_corruptions(extra["corruptions"])
        except ValueError:  # "None" (clean images only) of the OpenMMLab tools
            pass
    severities = {int(s) for s in [*(grid.get("severities") or []),
                                   *(extra.get("severities") or [])]} - {0}
    known = bool(grid) or bool(extra.get("severities"))
    return (list(dict.fromkeys(corruptions)) if known else None,
            sorted(severities) if known else None)


def cells_by_int_severity(results: Mapping) -> dict[str, dict[int, dict[str, float]]]:
    """The cells with integer severities, for :mod:`robust_transfer.metrics`."""
    return {c: {int(s): dict(m) for s, m in by_sev.items()} for c, by_sev in results["cells"].items()}


def seed_scheme_of(results: Mapping) -> str | None:
    """The seed scheme a results document was written with; for files without the field, the
    scheme its backend had before the field existed (torch: the torch.Generator scheme)."""
    if "seed_scheme" in results:
        return results["seed_scheme"]
    from .corruptions._seeding import LEGACY_TORCH_SEED_SCHEME

    backend = results.get("backend")
    if isinstance(backend, str) and backend.startswith("torch"):
        return LEGACY_TORCH_SEED_SCHEME
    return current_seed_scheme(backend)


def current_seed_scheme(backend) -> str | None:
    """The seed scheme this version uses for ``backend`` (None for non-seeded sources)."""
    from .corruptions._seeding import seed_scheme

    return seed_scheme(backend)


def identity(results: Mapping) -> dict:
    """The fields that must agree between shards or a resumed run of the same evaluation."""
    fields = {key: results.get(key) for key in IDENTITY_FIELDS}
    fields["seed_scheme"] = seed_scheme_of(results)
    return fields


def check_same_evaluation(a: Mapping, b: Mapping, what: str = "results") -> None:
    """Raise :class:`ResultsError` when ``a`` and ``b`` are not of the same evaluation."""
    ida, idb = identity(a), identity(b)
    differing = [k for k in IDENTITY_FIELDS if ida[k] != idb[k]]
    if differing:
        detail = ", ".join(f"{k}: {ida[k]!r} != {idb[k]!r}" for k in differing)
        hint = ("; random draws differ between seed schemes: rerun the older results with this "
                "version" if "seed_scheme" in differing else "")
        raise ResultsError(f"{what} are of different evaluations ({detail}){hint}")


def merge_results(documents: Iterable[Mapping]) -> dict:
    """Merge shard results of one evaluation into one document.

    Refuses documents of different models/configs/checkpoints/datasets/seeds/backends, and a
    cell present twice with different values.
    """
    documents = list(documents)
    if not documents:
        raise ResultsError("nothing to merge")
    merged = copy.deepcopy(documents[0])
    for other in documents[1:]:
        check_same_evaluation(merged, other, "shards")
        _merge_planned_grid(merged, other)
        for corruption, by_severity in other["cells"].items():
            for severity, cell in by_severity.items():
                existing = merged["cells"].get(corruption, {}).get(severity)
                if existing is not None and existing != cell:
                    raise ResultsError(f"cell {corruption}/{severity} differs between shards")
                merged["cells"].setdefault(corruption, {})[severity] = dict(cell)
        for metric in other["metrics"]:
            if metric not in merged["metrics"]:
                merged["metrics"].append(metric)
    merged.get("extra", {}).pop("shard", None)
    return merged


def _merge_planned_grid(merged: dict, other: Mapping) -> None:
    """Shards that each recorded only their own cells plan the union of them together."""
    if "grid" not in other:
        return
    grid = merged.setdefault("grid", {"corruptions": [], "severities": []})
    grid["corruptions"] = list(dict.fromkeys([*grid["corruptions"], *other["grid"]["corruptions"]]))
    grid["severities"] = sorted({*grid["severities"], *other["grid"]["severities"]})


def to_mmdet_robustness_pickle(results: Mapping, path: str | os.PathLike,
                               prefix: str = "coco") -> dict:
    """Export to the layout mmdet's ``tools/analysis_tools/robustness_eval.py`` reads.

    That layout is ``{corruption: {severity: {"<prefix>/<metric>": value}}}``, the clean result
    stored as severity 0 of every corruption, the first corruption's severity 0 being read as
    ``P``. Only corruptions with at least one evaluated cell are exported; the clean cell is
    required. Returns the exported mapping.
    """
    import pickle

    cells = results["cells"]
    clean = get_cell(results, "clean", 0)
    if clean is None:
        raise ResultsError("the mmdet robustness layout needs the clean (severity 0) cell")
    from .corruptions import CORRUPTION_GROUPS

    # mmdet reads the first 15 entries as the benchmark set: export in the canonical order.
    canonical = [c for c in CORRUPTION_GROUPS["all"] if c in cells]
    order = canonical + [c for c in cells if c not in canonical and c != "clean"]
    exported: dict[str, dict[int, dict[str, float]]] = {}
    for corruption in order:
        by_severity = cells[corruption]
        entry = {0: {f"{prefix}/{k}": v for k, v in clean.items()}}
        for severity, cell in sorted(by_severity.items(), key=lambda kv: int(kv[0])):
            entry[int(severity)] = {f"{prefix}/{k}": v for k, v in cell.items()}
        exported[corruption] = entry
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump(exported, handle)
    return exported
