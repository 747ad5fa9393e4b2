"""The robustness evaluator: one mmengine Runner, one checkpoint load, one grid cell per call."""
from __future__ import annotations

import copy
import os
from typing import Any, Sequence

from ..grid import Cell
from .adapter import TaskAdapter
from .pipeline import CORRUPT_ON, corrupt_transform_cfg, find_corrupt_preprocessor, swap_dataset_pipeline
from .runner import build_runner


class RobustnessEvaluator:
    """An mmengine Runner built once; :meth:`evaluate` runs one grid cell.

    The checkpoint is loaded once, by the first cell's ``runner.test()`` (after the
    ``before_run`` hooks, as mmengine orders it; ``load_or_resume`` is a no-op from then on,
    and the tests check that the log holds one load). The test dataset is built once
    (annotations parsed once). ``corrupt_on='pipeline'``: each cell gives it a new pipeline and a
    new dataloader (no persistent workers: each loader is used once). ``corrupt_on='batch'``
    (a config prepared by :func:`~robust_transfer.openmmlab.pipeline.enable_batch_corruption`):
    the dataloader of the config is kept for every cell, and each cell only sets the
    (corruption, severity) of the model's ``CorruptDataPreprocessor`` (None for the clean cell).
    """

    def __init__(self, cfg: Any, adapter: TaskAdapter, *, seed: int = 0, backend: str = "numpy",
                 show_dir: str | None = None, headlines: Sequence[str] | None = None,
                 corrupt_on: str = "pipeline"):
        if corrupt_on not in CORRUPT_ON:
            raise ValueError(f"corrupt_on must be one of {', '.join(CORRUPT_ON)}, got {corrupt_on!r}")
        self.cfg = cfg
        self.adapter = adapter
        self.seed = int(seed)
        self.backend = backend
        self.corrupt_on = corrupt_on
        self.show_dir = show_dir
        self.headlines = list(headlines) if headlines is not None else adapter.headlines(cfg)
        self.runner = build_runner(cfg, adapter)
        self._dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
        self._loader_cfg = copy.deepcopy(cfg.test_dataloader)
        self._loader_cfg["persistent_workers"] = False
        self.dataset = self.runner.test_loop.dataloader.dataset  # built once, here
        self.preprocessor = find_corrupt_preprocessor(self.runner.model) if corrupt_on == "batch" else None
        self.evaluated: list[Cell] = []

    @property
    def rank(self) -> int:
        """This process's rank in the runner's process group."""
        return self.runner.rank

    @property
    def world_size(self) -> int:
        """The number of processes evaluating together."""
        return self.runner.world_size

    @property
    def num_images(self) -> int:
        """Images per cell (the whole test set)."""
        return len(self.dataset)

    def evaluate(self, cell: Cell) -> dict[str, float]:
        """Test the model with ``cell``'s corruption (in the pipeline, or in the batch
        preprocessor); our metrics dict."""
        if self.preprocessor is not None:
            self.preprocessor.set_corruption(None if cell.is_clean else cell.corruption, cell.severity)
        else:
            swap_dataset_pipeline(self.dataset, self._dataset_cfg,
                                  corrupt_transform_cfg(cell, self.seed, self.backend))
            loader_cfg = copy.copy(self._loader_cfg)
            loader_cfg["dataset"] = self.dataset
            self.runner.test_loop.dataloader = self.runner.build_dataloader(loader_cfg, seed=self.runner.seed)
        if self.show_dir and self.adapter.set_show_dir is not None:
            self.adapter.set_show_dir(self.runner, os.path.join(self.show_dir, cell_dirname(cell)))
        raw = self.runner.test()
        self.evaluated.append(cell)
        return self.adapter.convert_metrics(raw, self.headlines)


def cell_dirname(cell: Cell) -> str:
    """The ``--show-dir`` subfolder of one cell: ``clean`` or ``<corruption>_<severity>``."""
    return "clean" if cell.is_clean else f"{cell.corruption}_{cell.severity}"
