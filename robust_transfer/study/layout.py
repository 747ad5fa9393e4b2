"""Where everything of a study lands: the one module that knows the work-dir layout, used by the
planner (which writes there) and the demo (which reads its tables from there).

::

    <work dir>/data/                       synthetic data sets (the demo, --smoke)
    <work dir>/standins/<backbone>.pth     stand-in ImageNet backbones, and next to each its
    <work dir>/standins/<backbone>.robustness.json   measured pre-training robustness
    <work dir>/standins/robustness_<suite>.json      the table of those, for the report
    <work dir>/converted/                  stand-ins converted for mmdet / mmseg
    <work dir>/train/<task>/...            trainings (see :meth:`Layout.train_dir`)
    <work dir>/results/<task>/<backbone>__<mode>.json   results (shards: robust_transfer.grid)
    <work dir>/logs/                       one log per command (--jobs > 1)
    <work dir>/reports/<suite>/            the report (unless the report dir is given)

Paths in commands are written relative to the repository root when inside it (:func:`rel`), so
a printed plan is readable and runs from the root.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def rel(path: str | Path) -> str:
    """``path`` relative to the repository root when inside it, else absolute."""
    path = Path(path)
    absolute = Path(os.path.normpath(path if path.is_absolute() else REPO / path))
    try:
        return str(absolute.relative_to(REPO))
    except ValueError:
        return str(absolute)


def from_repo(path: str | Path) -> Path:
    """``path`` as an absolute path (a relative one is relative to the repository root)."""
    path = Path(path)
    return path if path.is_absolute() else REPO / path


@dataclass(frozen=True)
class Layout:
    """The files of one work dir (``root``); ``report_dir`` overrides where the report goes."""

    root: Path
    report_dir: Path | None = None

    @classmethod
    def at(cls, work_dir: str | Path, report_dir: str | Path | None = None) -> "Layout":
        """The layout of ``work_dir`` (relative paths: from the repository root)."""
        return cls(from_repo(work_dir), from_repo(report_dir) if report_dir else None)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def standin(self, backbone: str) -> Path:
        return self.root / "standins" / f"{backbone}.pth"

    def standin_robustness(self, backbone: str) -> Path:
        """The measured pre-training robustness the stand-in's pre-training writes."""
        return self.root / "standins" / f"{backbone}.robustness.json"

    def robustness_table(self, suite: str) -> Path:
        """The table of the stand-ins' pre-training robustness the report reads."""
        return self.root / "standins" / f"robustness_{suite}.json"

    def converted(self, backbone: str, arch: str) -> Path:
        """A stand-in converted once for both mmdet and mmseg (their ResNets share keys)."""
        return self.root / "converted" / f"{backbone}_{arch}_mmdet.pth"

    def train_dir(self, task: str, backbone: str, mode: str, *, flat: bool = False) -> Path:
        """A training's folder: ``train/<task>/<backbone>/<mode>``; ``flat``:
        ``train/<task>/<backbone>__<mode>`` (main.py names its results' model after it)."""
        base = self.root / "train" / task
        return base / f"{backbone}__{mode}" if flat else base / backbone / mode

    @property
    def results_dir(self) -> Path:
        return self.root / "results"

    def result(self, task: str, backbone: str, mode: str) -> Path:
        return self.results_dir / task / f"{backbone}__{mode}.json"

    def results_files(self) -> list[Path]:
        """Every results file there is (shard files left out), sorted."""
        from ..grid import is_shard_path

        return [path for path in sorted(self.results_dir.glob("*/*.json"))
                if not is_shard_path(path)]

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def report(self, suite: str) -> Path:
        return self.report_dir or self.root / "reports" / suite
