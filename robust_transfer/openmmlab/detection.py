"""The detection task (mmdet 3.x, COCO Mask R-CNN): its :class:`TaskAdapter` and helpers.

Metrics: mmdet's ``CocoMetric`` returns ``coco/bbox_mAP``, ``coco/segm_mAP`` and so on as
fractions; we store them with the ``coco/`` prefix stripped (``metric_scale`` 1). The headline
metrics are the ``<task>_mAP`` of each of bbox / segm the config's evaluator computes.
"""
from __future__ import annotations

from typing import Any

from .adapter import TaskAdapter
from .pipeline import dataset_leaves

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
    """As mmdet's test tools: the test dataset(s) in test mode."""
    for leaf, _ in dataset_leaves(cfg.test_dataloader.dataset):
        leaf["test_mode"] = True


def configure_detection_show(cfg: Any, show_dir: str | None) -> None:
    """Turn on mmdet's ``DetVisualizationHook``, drawing into ``show_dir`` when given (the
    robustness tool passes None and sets each cell's folder with :func:`set_detection_show_dir`)."""
    hooks = cfg.get("default_hooks") or {}
    if "visualization" not in hooks:
        raise ValueError("--show-dir needs default_hooks.visualization "
                         "(dict(type='DetVisualizationHook')) in the config")
    hooks["visualization"]["draw"] = True
    if show_dir:
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
    registry_scope="mmdet",
    headline_metrics=detection_headlines,
    metric_scale=1.0,
    pickle_prefix="coco",
    print_labels={"bbox_mAP": ("bbox", "mAP"), "segm_mAP": ("segm", "mAP")},
    plugin_module="robust_transfer.openmmlab.mmdet",
    prepare_config=prepare_detection_config,
    configure_show=configure_detection_show,
    set_show_dir=set_detection_show_dir,
    empty_result_value=0.0,  # nothing detected in a whole cell: AP 0, not an aborted grid
    test_out="pickle",
)
