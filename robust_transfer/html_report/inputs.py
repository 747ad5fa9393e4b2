"""The results a report is made of: files or folders of files, each loaded once, each model
once, and the metric each task's tables show."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..metrics import Summary, summarize_document
from ..results import SCHEMA, identity, load_results


def expand_results_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Every results file named by ``paths``: files as given, folders searched recursively for
    ``*.json`` files whose ``schema`` is a results file's (reports and cards are skipped).

    A folder without any results file, or a path that does not exist, is a ValueError.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = [p for p in sorted(path.rglob("*.json")) if _is_results_file(p)]
            if not inside:
                raise ValueError(f"{path}: folder holds no robust-transfer results file (*.json)")
            found += inside
        elif path.is_file():
            found.append(path)
        else:
            raise ValueError(f"{path}: no such results file or folder")
    return list(dict.fromkeys(p.resolve() for p in found))


def _is_results_file(path: Path) -> bool:
    from ..grid import is_shard_path

    # Shard files and temporary files of an atomic save are not finished results.
    if path.name.startswith(".") or is_shard_path(path):
        return False
    try:
        return json.loads(path.read_text()).get("schema") == SCHEMA
    except (OSError, ValueError, AttributeError):
        return False


@dataclass
class Entry:
    """One evaluated model of the report: its results, where they came from, and the
    summaries of every metric they hold."""

    results: Mapping
    source: Path | None
    metric: str  # the metric this model's task is tabled by
    summaries: dict[str, Summary] = field(default_factory=dict)
    id: str = ""

    @property
    def task(self) -> str:
        return self.results["task"]

    @property
    def backbone(self) -> str:
        return self.results.get("backbone") or self.results["model"]

    @property
    def mode(self) -> str:
        return self.results.get("transfer_mode") or ""

    @property
    def dataset(self) -> str:
        return self.results.get("dataset") or ""

    @property
    def scale(self) -> float:
        return float(self.results.get("metric_scale", 1.0))

    @property
    def headline(self) -> Summary:
        """The summary of the metric the tables show."""
        return self.summaries[self.metric]

    @property
    def label(self) -> str:
        """The model id, plus backbone and transfer mode where the id does not say them."""
        model = self.results["model"]
        parts = [p for p in (self.results.get("backbone"), self.results.get("transfer_mode"))
                 if p and p not in model]
        return f"{model} ({', '.join(parts)})" if parts else model


def build_entries(documents: Sequence[tuple[Mapping, Path | None]], metric: str | None = None,
                  corruptions: Iterable[str] | None = None) -> tuple[list[Entry], list[str]]:
    """Entries of the report and notes about what was left out.

    ``metric`` picks the metric of the tables (as mmdet's robustness_eval ``--metric``); models
    whose results lack it are left out of the report, and a metric no results hold is a
    ValueError listing the ones they do. Without it, each model is tabled by its results'
    ``primary_metric``. A results file seen twice (the same evaluation reached through two
    folders) counts once.
    """
    scope = list(corruptions) if corruptions is not None else None
    if metric is not None:
        check_metric_held([doc for doc, _ in documents], metric)
    entries: list[Entry] = []
    notes: list[str] = []
    seen: dict[str, Path | None] = {}
    for document, source in documents:
        key = json.dumps([identity(document), document["cells"]], sort_keys=True, default=str)
        if key in seen:
            notes.append(f"{source} repeats {seen[key]}; counted once")
            continue
        seen[key] = source
        chosen = metric or document.get("primary_metric") or document["metrics"][0]
        if chosen not in document["metrics"]:
            notes.append(f"{document['model']} ({document['task']}) has no {chosen}; left out")
            continue
        summaries = summarize_document(document, scope)
        entries.append(Entry(document, source, chosen, summaries))
    _assign_ids(entries)
    return entries, notes


def _assign_ids(entries: Sequence[Entry]) -> None:
    """Stable ids (the file names of the model cards and the page's anchors), unique."""
    import re

    used: set[str] = set()
    for entry in entries:
        base = re.sub(r"[^A-Za-z0-9_.+-]+", "_", f"{entry.task}__{entry.label}").strip("_")
        candidate, n = base, 2
        while candidate in used:
            candidate, n = f"{base}_{n}", n + 1
        used.add(candidate)
        entry.id = candidate


def load_documents(paths: Iterable[str | Path]) -> list[tuple[dict, Path]]:
    """Load (and validate) every results file named by ``paths`` (files or folders)."""
    return [(load_results(p), p) for p in expand_results_paths(paths)]


def restrict_to_metric(documents: Sequence[Mapping], metric: str | None) -> list[dict]:
    """The documents as the other report files should see them under ``--metric``: only those
    holding ``metric``, each listing it as its only metric (all of them when ``metric`` is None).
    A metric no document holds is a ValueError listing the ones they do."""
    if metric is None:
        return [dict(d) for d in documents]
    check_metric_held(documents, metric)
    return [{**d, "metrics": [metric], "primary_metric": metric} for d in documents
            if metric in d["metrics"]]


def check_metric_held(documents: Sequence[Mapping], metric: str) -> None:
    """ValueError listing the metrics the documents hold when none of them holds ``metric``."""
    held = sorted({m for d in documents for m in d["metrics"]})
    if metric not in held:
        raise ValueError(f"no results hold metric {metric!r}; they hold: {', '.join(held)}")
