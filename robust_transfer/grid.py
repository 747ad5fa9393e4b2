"""The (corruption x severity) evaluation grid shared by detection, segmentation and
classification.

A run is a list of :class:`Cell`; a task adapter supplies one function, ``evaluate_cell(cell)
-> {metric: value}``. :func:`run_grid` evaluates the cells not yet in the results file and writes
the file after each finished cell, atomically, so a run killed at any moment (even by SIGKILL)
leaves a valid file that ``resume=True`` completes. ``shard`` splits the cells over jobs; the
shard files are merged with :func:`robust_transfer.results.merge_results`.
"""
from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from .corruptions import resolve_corruptions
from .results import (ResultsError, check_same_evaluation, get_cell, load_results,
                      record_planned_grid, save_results, set_cell)

CLEAN = "clean"


@dataclass(frozen=True, order=True)
class Cell:
    """One grid cell; severity 0 is the clean cell (corruption ``"clean"``)."""

    corruption: str
    severity: int

    @property
    def is_clean(self) -> bool:
        return self.severity == 0

    def __str__(self) -> str:
        return CLEAN if self.is_clean else f"{self.corruption}@{self.severity}"


def parse_severities(severities: Iterable[int | str]) -> list[int]:
    """Validated, de-duplicated, sorted severities in 0..5 (0 = clean)."""
    parsed = []
    for value in severities:
        try:
            severity = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"severity {value!r} is not an integer; allowed: 0 (clean), 1..5") from None
        if not 0 <= severity <= 5:
            raise ValueError(f"severity {severity} is outside 0..5 (0 = clean, 1..5 = corrupted)")
        parsed.append(severity)
    return sorted(set(parsed))


def build_cells(corruptions, severities: Iterable[int | str] = (0, 1, 2, 3, 4, 5)) -> list[Cell]:
    """The grid: the clean cell when severity 0 is asked for, then every corruption x severity.

    ``corruptions`` is anything :func:`robust_transfer.corruptions.resolve_corruptions` takes:
    a group name (``benchmark``, ``all``, ``noise``...), a corruption name, a list of those, or
    ``None``/``"none"`` for the clean cell only.
    """
    names = resolve_corruptions(corruptions)
    levels = parse_severities(severities)
    cells = [Cell(CLEAN, 0)] if 0 in levels else []
    cells += [Cell(name, s) for name in names for s in levels if s > 0]
    if not cells:
        raise ValueError("the grid is empty: give severity 0 (clean) and/or corruptions with severities 1..5")
    return cells


def parse_shard(text: str | None) -> tuple[int, int]:
    """Parse ``"i/n"`` (0-based shard ``i`` of ``n``); None means the whole grid (0/1)."""
    if text in (None, ""):
        return 0, 1
    try:
        index, count = (int(part) for part in str(text).split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected i/n, e.g. 0/4 (0-based index)") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text!r}: need 0 <= i < n")
    return index, count


def select_shard(cells: Sequence[Cell], index: int, count: int) -> list[Cell]:
    """Every ``count``-th cell starting at ``index``: shards interleave, so each gets a similar
    mix of cheap and expensive corruptions."""
    return list(cells[index::count])


def shard_path(path: str | Path, index: int, count: int) -> Path:
    """The file of shard ``index`` of ``count`` of the results (or predictions) file ``path``:
    ``<stem>.shard<index>-of-<count><suffix>`` next to it. The one place shard names are made."""
    path = Path(path)
    return path.with_name(f"{path.stem}.shard{index}-of-{count}{path.suffix}")


def find_shard_paths(path: str | Path) -> list[Path]:
    """The shard files of the results file ``path`` that exist (any count), sorted."""
    path = Path(path)
    return sorted(path.parent.glob(f"{path.stem}.shard*-of-*{path.suffix}"))


def is_shard_path(path: str | Path) -> bool:
    """Whether ``path`` is a shard file (named by :func:`shard_path`)."""
    return re.search(r"\.shard\d+-of-\d+$", Path(path).stem) is not None


def pending_cells(cells: Sequence[Cell], results: Mapping) -> list[Cell]:
    """The cells of ``cells`` that ``results`` does not hold yet."""
    return [cell for cell in cells if get_cell(results, cell.corruption, cell.severity) is None]


def prepare_results(results: dict, path: str | Path, resume: bool) -> dict:
    """Attach the cells already in ``path`` to ``results`` (resume), or refuse to clobber them.

    Raises :class:`ResultsError` when ``path`` holds another evaluation, or holds finished
    cells and ``resume`` is False.
    """
    path = Path(path)
    if not path.exists():
        return results
    existing = load_results(path)
    if not existing["cells"]:
        return results
    if not resume:
        raise ResultsError(f"{path} already holds {sum(map(len, existing['cells'].values()))} "
                           "finished cells: pass --resume to continue that run, or remove the file")
    check_same_evaluation(existing, results, f"{path} and this run")
    results["cells"] = existing["cells"]
    return results


def run_grid(cells: Sequence[Cell], evaluate_cell: Callable[[Cell], Mapping[str, float]],
             results: dict, path: str | Path | None, *, resume: bool = False, write: bool = True,
             images_per_cell: int | None = None, progress: bool = True,
             on_cell: Callable[[Cell, Mapping[str, float]], None] | None = None,
             barrier: Callable[[], None] | None = None,
             planned: Sequence[Cell] | None = None) -> dict:
    """Evaluate the pending ``cells`` and store each in ``results`` (and in ``path``) at once.

    ``planned`` is the whole grid the run was asked for, before ``--shard`` picked ``cells``
    from it (default: ``cells``). It is recorded in the results (:func:`record_planned_grid`),
    so that reports count missing cells against what was planned, not against 15 x 5.

    ``write`` is False on all but one rank of a distributed run: every rank evaluates every
    cell (on its part of the data) and only the writer saves. ``barrier`` is called after the
    existing results are read, so that no rank sees a cell another rank has just written.
    """
    if path is not None:
        results = prepare_results(results, path, resume)
    record_planned_grid(results, [(c.corruption, c.severity) for c in (planned or cells)])
    if barrier is not None:
        barrier()
    todo = pending_cells(cells, results)
    skipped = len(cells) - len(todo)
    if skipped and progress:
        print(f"[grid] {skipped} of {len(cells)} cells already done, {len(todo)} to evaluate",
              file=sys.stderr)
    bar = _progress_bar(len(todo), progress)
    start = time.perf_counter()
    for done, cell in enumerate(todo, 1):
        if bar is not None:
            bar.set_description(str(cell))
        metrics = dict(evaluate_cell(cell))
        set_cell(results, cell.corruption, cell.severity, metrics)
        if write and path is not None:
            save_results(results, path)
        if on_cell is not None:
            on_cell(cell, metrics)
        if bar is not None:
            elapsed = time.perf_counter() - start
            if images_per_cell:
                bar.set_postfix_str(f"{done * images_per_cell / max(elapsed, 1e-9):.1f} img/s")
            bar.update(1)
    if bar is not None:
        bar.close()
    return results


def _progress_bar(total: int, enabled: bool):
    if not enabled or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="cell", dynamic_ncols=True, file=sys.stderr)
