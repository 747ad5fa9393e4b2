"""The mmdet plugin: import it through a config's ``custom_imports``::

    custom_imports = dict(imports=['robust_transfer.integrations.mmdet'], allow_failed_imports=False)

On import it

* registers our seeded :class:`~robust_transfer.integrations.transforms.Corrupt` in mmdet's
  ``TRANSFORMS`` registry under the name ``Corrupt``, replacing mmdet's own (``force=True``;
  mmdet's transforms module is imported first so that its own registration has happened), so
  configs written for mmdet's transform keep working;
* applies the compatibility shims (:func:`robust_transfer.integrations.compat.apply_shims`).

It also defines :data:`DETECTION`, the task adapter of the shared robustness runner
(:mod:`robust_transfer.integrations.openmmlab`) used by ``mmdetection/tools/test_robustness.py``.
"""
from __future__ import annotations

from typing import Any

import mmdet.datasets.transforms  # noqa: F401  (mmdet's own Corrupt registers first)
from mmdet.registry import TRANSFORMS

from .compat import apply_shims
from .openmmlab import TaskAdapter
from .transforms import Corrupt, register_corrupt

__all__ = ["Corrupt", "DETECTION", "detection_headlines"]

register_corrupt(TRANSFORMS)
apply_shims()

_COCO_TASKS = ("bbox", "segm")


def detection_headlines(cfg: Any) -> list[str]:
    """``<task>_mAP`` for each of bbox / segm that the config's ``test_evaluator`` computes
    (CocoMetric ``metric=``); ``['bbox_mAP', 'segm_mAP']`` when that cannot be told."""
    evaluator = cfg.get("test_evaluator") if cfg is not None else None
    evaluators = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]
    found: list[str] = []
    for ev in evaluators:
        if not hasattr(ev, "get"):
            continue
        metric = ev.get("metric", "bbox")
        for task in [metric] if isinstance(metric, str) else list(metric):
            if task in _COCO_TASKS and f"{task}_mAP" not in found:
                found.append(f"{task}_mAP")
    return found or [f"{t}_mAP" for t in _COCO_TASKS]


def prepare_detection_config(cfg: Any) -> None:
    """As mmdet's test tools: the test dataset in test mode."""
    dataset = cfg.test_dataloader.dataset
    while "pipeline" not in dataset and "dataset" in dataset:
        dataset = dataset.dataset
    dataset["test_mode"] = True


def configure_detection_show(cfg: Any, show_dir: str) -> None:
    """Turn on mmdet's ``DetVisualizationHook`` drawing into ``show_dir``."""
    hooks = cfg.get("default_hooks") or {}
    if "visualization" not in hooks:
        raise ValueError("--show-dir needs default_hooks.visualization "
                         "(dict(type='DetVisualizationHook')) in the config")
    hooks["visualization"]["draw"] = True
    hooks["visualization"]["test_out_dir"] = show_dir


def set_detection_show_dir(runner: Any, folder: str) -> None:
    """Point the visualisation hook at one cell's folder (absolute, so mmdet's hook does not
    prefix it with the work dir). mmdet's hook draws on the image re-read from disk, i.e. the
    clean image, with the predictions made on the corrupted one."""
    for hook in runner.hooks:
        if hasattr(hook, "test_out_dir"):
            hook.test_out_dir = folder


DETECTION = TaskAdapter(
    task="detection",
    headline_metrics=detection_headlines,
    metric_scale=1.0,
    pickle_prefix="coco",
    print_labels={"bbox_mAP": ("bbox", "mAP"), "segm_mAP": ("segm", "mAP")},
    plugin_module=__name__,
    prepare_config=prepare_detection_config,
    configure_show=configure_detection_show,
    set_show_dir=set_detection_show_dir,
    empty_result_value=0.0,  # nothing detected in a whole cell: AP 0, not an aborted grid
)
