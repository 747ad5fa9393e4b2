"""The segmentation task (mmseg 1.x, ADE20K UperNet): its :class:`TaskAdapter` and helpers.

Metrics: mmseg's ``IoUMetric`` returns ``aAcc``, ``mIoU`` and ``mAcc`` in percent, rounded to
two decimals; they are stored as they come (``metric_scale`` 100). ``mIoU`` is the primary
metric: P / mPC / rPC are printed for it first, then for mAcc and aAcc.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .adapter import TaskAdapter
from .pipeline import leaf_dataset_cfg

#: mmseg IoUMetric's names are ours; the first is the primary metric.
SEGMENTATION_METRICS = ("mIoU", "mAcc", "aAcc")


def configure_show(cfg: Any, show_dir: str | None = None) -> None:
    """Turn on mmseg's ``SegVisualizationHook`` for every test image. With ``show_dir`` the
    visualizer saves there, as mmseg's ``tools/test.py --show-dir`` does; the robustness tool
    passes None and sends each cell's drawings to a subfolder (:func:`set_show_dir`), so only
    the drawings (not the visualizer's config and scalar logs) land in its folder."""
    hooks = cfg.get("default_hooks") or {}
    if "visualization" not in hooks:
        raise ValueError("--show-dir needs default_hooks.visualization "
                         "(dict(type='SegVisualizationHook')) in the config")
    hooks["visualization"]["draw"] = True
    hooks["visualization"]["interval"] = 1
    if show_dir:
        cfg.visualizer["save_dir"] = show_dir


def set_show_dir(runner: Any, folder: str) -> None:
    """Send the drawings of the next test run to ``folder`` (one folder per grid cell).

    mmseg's hook saves through the visualizer's ``LocalVisBackend``, whose folder is fixed when
    it is built; we give the visualizer a fresh local backend writing straight into ``folder``.
    The hook draws the predictions (made on the corrupted image) over the clean image it re-reads
    from disk.
    """
    from mmengine.visualization import LocalVisBackend

    backends = getattr(runner.visualizer, "_vis_backends", None)
    if backends is None:
        return
    for name, backend in list(backends.items()):
        if isinstance(backend, LocalVisBackend):
            backends[name] = LocalVisBackend(save_dir=folder, img_save_dir=".")


def describe_dataset(cfg: Any) -> str:
    """``'ADE20KDataset:<data_root name>/<validation images folder>'``."""
    ds = leaf_dataset_cfg(cfg.test_dataloader.dataset)
    root = Path(str(ds.get("data_root", "") or "")).name
    prefix = ds.get("data_prefix") or {}
    images = prefix.get("img_path", "") if hasattr(prefix, "get") else str(prefix)
    return f"{ds.get('type', 'dataset')}:{'/'.join(p for p in (root, images) if p)}"


def check_iou_evaluator(cfg: Any) -> None:
    """Check that the test evaluator computes what we report (mmseg's ``IoUMetric`` with
    ``mIoU`` among its ``iou_metrics``): a clear error instead of a missing-metric one after
    the first cell."""
    evaluator = cfg.get("test_evaluator")
    evaluators = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]
    for ev in evaluators:
        if hasattr(ev, "get") and str(ev.get("type", "")).rsplit(".", 1)[-1] == "IoUMetric":
            if "mIoU" not in list(ev.get("iou_metrics", ["mIoU"])):
                ev["iou_metrics"] = ["mIoU", *ev.get("iou_metrics", [])]
            return
    raise ValueError("the segmentation robustness tool needs test_evaluator = "
                     "dict(type='IoUMetric', iou_metrics=['mIoU']) in the config "
                     f"(found {evaluator!r})")


def tidy_metrics(raw: dict) -> dict:
    """float32 values -> the shortest float that reads back as the same float32; others kept.

    ``IoUMetric`` returns float32 numbers (``np.round(x * 100, 2)``); a plain ``float()`` turns
    its 41.23 into 41.22999954223633. The shortest decimal that reads back as the same float32
    (41.23) loses no information, and the results file shows mmseg's numbers."""
    import numpy as np

    return {k: float(str(v)) if isinstance(v, np.float32) else v for k, v in raw.items()}


def check_backbone(cfg: Any) -> None:
    """``tools/train.py``: the config's ImageNet backbone file fits the backbone it builds."""
    from ..backbones.mmseg import check_backbone_checkpoint

    check_backbone_checkpoint(cfg)


SEGMENTATION = TaskAdapter(
    task="segmentation",
    registry_scope="mmseg",
    headline_metrics=SEGMENTATION_METRICS,
    metric_keys={m: m for m in SEGMENTATION_METRICS},
    metric_scale=100.0,
    pickle_prefix=None,  # mmdet's robustness_eval.py reads COCO metrics only
    print_labels={m: ("segm", m) for m in SEGMENTATION_METRICS},
    plugin_module="robust_transfer.openmmlab.mmseg",
    check_evaluator=check_iou_evaluator,
    configure_show=configure_show,
    set_show_dir=set_show_dir,
    describe_dataset=describe_dataset,
    tidy_metrics=tidy_metrics,
    check_backbone=check_backbone,
    test_out="folder",
    printed_metrics=SEGMENTATION_METRICS,
)
