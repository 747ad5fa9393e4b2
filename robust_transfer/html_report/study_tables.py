"""The study's tables as data: per task (and metric), backbones as columns, P / mPC / rPC as
rows, one table per transfer mode, and PRIME against no PRIME with the difference.

A (backbone, mode) that was not evaluated is a missing number, shown as "—"; it is never a zero
and never averaged into anything.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ..metrics import scope_text
from .inputs import Entry

MISSING = "—"
#: Task and mode order of the paper; anything else follows in first-seen order.
TASK_ORDER = ("detection", "segmentation", "classification")
MODE_ORDER = ("fixed-feature", "full-network")
PRIME_SUFFIX = "+prime"
MEASURES = ("P", "mPC", "rPC")


@dataclass
class Number:
    """One table number in display units (percent, or percentage points for differences);
    ``None`` when not evaluated. ``partial``: some corruption cells were missing."""

    value: float | None
    partial: bool = False
    signed: bool = False

    @property
    def text(self) -> str:
        if self.value is None:
            return MISSING
        text = f"{self.value:+.1f}" if self.signed else f"{self.value:.1f}"
        return text + ("*" if self.partial else "")


@dataclass
class Grid:
    """A table: a title, backbone columns, and (row label, numbers) rows."""

    title: str
    columns: list[str]
    rows: list[tuple[str, list[Number]]] = field(default_factory=list)


@dataclass
class TaskTables:
    """Every table of one task and metric."""

    task: str
    metric: str
    datasets: list[str]
    modes: list[Grid]
    prime: list[Grid]
    scopes: list[str] = field(default_factory=list)  # what the mPCs average, e.g. "15 ... x severity 1"


def measures(entry: Entry | None) -> dict[str, Number]:
    """P, mPC and rPC of the entry's tabled metric in percent (missing numbers when absent)."""
    if entry is None:
        return {m: Number(None) for m in MEASURES}
    s, scale = entry.headline, entry.scale
    pct = (lambda v: None if v is None else 100.0 * v / scale)
    return {"P": Number(pct(s.P)), "mPC": Number(pct(s.mPC), partial=not s.complete),
            "rPC": Number(None if s.rPC is None else 100.0 * s.rPC, partial=not s.complete)}


def _ordered(values, preferred: Sequence[str]) -> list[str]:
    values = list(dict.fromkeys(values))
    return [v for v in preferred if v in values] + [v for v in values if v not in preferred]


def _backbone_order(backbones) -> list[str]:
    """The catalogue's order (the paper's columns) for catalogued backbones, then the rest in
    first-seen order."""
    from ..backbones.catalogue import list_backbones

    return _ordered(backbones, list_backbones())


def _index(entries: Sequence[Entry], notes: list[str]) -> dict[tuple, Entry]:
    """(task, metric, backbone, mode) -> the first entry with them; later ones are noted."""
    index: dict[tuple, Entry] = {}
    for entry in entries:
        key = (entry.task, entry.metric, entry.backbone, entry.mode)
        if key in index:
            notes.append(f"{entry.label} ({entry.source}): a second {entry.task} result for "
                         f"{entry.backbone} / {entry.mode or 'no mode'}; the tables show "
                         f"{index[key].source}")
            continue
        index[key] = entry
    return index


def _mode_grid(index, task, metric, mode, backbones) -> Grid:
    by_backbone = {b: measures(index.get((task, metric, b, mode))) for b in backbones}
    grid = Grid(mode or "(no transfer mode)", list(backbones))
    grid.rows = [(m, [by_backbone[b][m] for b in backbones]) for m in MEASURES]
    return grid


def _prime_grid(index, task, metric, prime_mode, backbones) -> Grid:
    base = prime_mode[: -len(PRIME_SUFFIX)]
    grid = Grid(f"{base}: PRIME against no PRIME", list(backbones))
    for measure in MEASURES:
        without = [measures(index.get((task, metric, b, base)))[measure] for b in backbones]
        with_prime = [measures(index.get((task, metric, b, prime_mode)))[measure] for b in backbones]
        difference = [Number(None if a.value is None or b.value is None else b.value - a.value,
                             partial=a.partial or b.partial, signed=True)
                      for a, b in zip(without, with_prime)]
        grid.rows += [(f"{measure} no PRIME", without), (f"{measure} PRIME", with_prime),
                      (f"Δ{measure} (pp)", difference)]
    return grid


def study_tables(entries: Sequence[Entry]) -> tuple[list[TaskTables], list[str]]:
    """The study's tables over every entry (several suites at once), and notes on entries
    the tables could not show (a second result for the same task, backbone and mode)."""
    notes: list[str] = []
    index = _index(entries, notes)
    tables = []
    pairs = list(dict.fromkeys((e.task, e.metric) for e in entries))
    tasks = _ordered([t for t, _ in pairs], TASK_ORDER)
    for task, metric in sorted(pairs, key=lambda p: tasks.index(p[0])):
        mine = [e for e in entries if (e.task, e.metric) == (task, metric)]
        backbones = _backbone_order(e.backbone for e in mine)
        modes = _ordered([e.mode for e in mine], MODE_ORDER)
        plain = [m for m in modes if not m.endswith(PRIME_SUFFIX)]
        primed = [m for m in modes if m.endswith(PRIME_SUFFIX)]
        tables.append(TaskTables(
            task, metric, sorted({e.dataset for e in mine if e.dataset}),
            [_mode_grid(index, task, metric, m, backbones) for m in plain],
            [_prime_grid(index, task, metric, m, backbones) for m in primed],
            sorted({scope_text(e.headline) for e in mine})))
    return tables, notes
