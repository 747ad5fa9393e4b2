"""The mmsegmentation plugin: import it through a config's ``custom_imports``::

    custom_imports = dict(imports=['robust_transfer.integrations.mmseg'], allow_failed_imports=False)

On import it

* registers our seeded :class:`~robust_transfer.integrations.transforms.Corrupt` (the one
  shared with mmdet) in mmseg's ``TRANSFORMS`` registry under the name ``Corrupt`` (mmseg has no
  transform of that name; its transforms module is imported first all the same);
* applies the compatibility shims (:func:`robust_transfer.integrations.compat.apply_shims`).

It also defines :data:`SEGMENTATION`, the task adapter of the shared robustness runner
(:mod:`robust_transfer.integrations.openmmlab`) that ``mmsegmentation/tools/test_robustness.py``
passes to :func:`~robust_transfer.integrations.openmmlab.robustness_main`, and the few helpers
the thin ``tools/train.py`` and ``tools/test.py`` call.

Metrics: mmseg's ``IoUMetric`` returns ``aAcc``, ``mIoU`` and ``mAcc`` in percent, rounded to
two decimals; they are stored as they come (``metric_scale`` 100). ``mIoU`` is the primary
metric: P / mPC / rPC are printed for it first, then for mAcc and aAcc.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import mmseg.datasets.transforms  # noqa: F401  (mmseg's transforms register first)
from mmseg.registry import TRANSFORMS

from .compat import apply_shims
from .openmmlab import TaskAdapter, prepare_cpu_distributed
from .transforms import Corrupt, register_corrupt

__all__ = ["Corrupt", "SEGMENTATION", "SegmentationAdapter", "build_runner", "configure_show",
           "load_config"]

register_corrupt(TRANSFORMS)
apply_shims()

#: mmseg IoUMetric's names are ours; the first is the primary metric.
SEGMENTATION_METRICS = ("mIoU", "mAcc", "aAcc")


# ----------------------------------------------------------------------------- visualisation


def configure_show(cfg: Any, show_dir: str | None = None) -> None:
    """Turn on mmseg's ``SegVisualizationHook`` for every test image. With ``show_dir`` the
    visualizer saves there, as mmseg's ``tools/test.py --show-dir`` does; the robustness tool
    passes its folder too but sends each cell's drawings to a subfolder (:func:`set_show_dir`),
    so only the drawings (not the visualizer's config and scalar logs) land in it."""
    hooks = cfg.get("default_hooks") or {}
    if "visualization" not in hooks:
        raise ValueError("--show-dir needs default_hooks.visualization "
                         "(dict(type='SegVisualizationHook')) in the config")
    hooks["visualization"]["draw"] = True
    hooks["visualization"]["interval"] = 1
    if show_dir:
        cfg.visualizer["save_dir"] = show_dir


def _configure_show_per_cell(cfg: Any, show_dir: str) -> None:
    configure_show(cfg, None)


def set_show_dir(runner: Any, folder: str) -> None:
    """Send the drawings of the next test run to ``folder`` (one folder per grid cell).

    mmseg's hook saves through the visualizer's ``LocalVisBackend``, whose folder is fixed when
    it is built; we give the visualizer a fresh local backend writing straight into ``folder``.
    The hook draws the predictions (made on the corrupted image) over the clean image it re-reads
    from disk.
    """
    from mmengine.visualization import LocalVisBackend

    visualizer = runner.visualizer
    backends = getattr(visualizer, "_vis_backends", None)
    if backends is None:
        return
    for name, backend in list(backends.items()):
        if isinstance(backend, LocalVisBackend):
            backends[name] = LocalVisBackend(save_dir=folder, img_save_dir=".")


# ----------------------------------------------------------------------------- the adapter


def describe_dataset(cfg: Any) -> str:
    """``'ADE20KDataset:<data_root name>/<validation images folder>'``."""
    ds = cfg.test_dataloader.dataset
    while "pipeline" not in ds and "dataset" in ds:
        ds = ds.dataset
    root = Path(str(ds.get("data_root", "") or "")).name
    prefix = ds.get("data_prefix") or {}
    images = prefix.get("img_path", "") if hasattr(prefix, "get") else str(prefix)
    return f"{ds.get('type', 'dataset')}:{'/'.join(p for p in (root, images) if p)}"


def prepare_segmentation_config(cfg: Any) -> None:
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


class SegmentationAdapter(TaskAdapter):
    """:class:`TaskAdapter` whose metric values are written as mmseg reports them.

    ``IoUMetric`` returns float32 numbers (``np.round(x * 100, 2)``); a plain ``float()`` turns
    its 41.23 into 41.22999954223633. We keep the shortest decimal that reads back as the same
    float32 (41.23): no information is lost, and the results file shows mmseg's numbers.
    """

    def convert_metrics(self, raw, headlines):
        return super().convert_metrics(tidy_metrics(raw), headlines)


def tidy_metrics(raw: dict) -> dict:
    """float32 values -> the shortest float that reads back as the same float32; others kept."""
    import numpy as np

    return {k: float(str(v)) if isinstance(v, np.float32) else v for k, v in raw.items()}


SEGMENTATION = SegmentationAdapter(
    task="segmentation",
    headline_metrics=SEGMENTATION_METRICS,
    metric_keys={m: m for m in SEGMENTATION_METRICS},
    metric_scale=100.0,
    pickle_prefix=None,  # mmdet's robustness_eval.py reads COCO metrics only
    print_labels={m: ("segm", m) for m in SEGMENTATION_METRICS},
    plugin_module=__name__,
    prepare_config=prepare_segmentation_config,
    configure_show=_configure_show_per_cell,
    set_show_dir=set_show_dir,
    describe_dataset=describe_dataset,
)


# ----------------------------------------------------------------------------- train / test


def load_config(config: str | os.PathLike, *, cfg_options: dict | None = None,
                work_dir: str | None = None, launcher: str = "none") -> Any:
    """Read a config as mmseg's tools do: ``--cfg-options`` merged, ``launcher`` set, work dir
    from the command line, else the config, else ``work_dirs/<config name>`` (made absolute)."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(config))
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get("work_dir") is None:
        cfg.work_dir = os.path.join("work_dirs", Path(config).stem)
    cfg.work_dir = str(Path(cfg.work_dir).resolve())
    return cfg


def build_runner(cfg: Any) -> Any:
    """mmengine's Runner (or the config's ``runner_type``), after the CPU-distributed shim."""
    from mmengine.runner import Runner

    prepare_cpu_distributed(cfg, cfg.get("launcher", "none"))
    if "runner_type" in cfg:
        from mmseg.registry import RUNNERS

        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def enable_amp(cfg: Any) -> None:
    """``--amp``: mixed precision through mmengine's ``AmpOptimWrapper``."""
    wrapper = cfg.optim_wrapper.get("type", "OptimWrapper")
    if wrapper == "AmpOptimWrapper":
        return
    if wrapper != "OptimWrapper":
        raise ValueError(f"--amp works with optim_wrapper type OptimWrapper, not {wrapper}")
    cfg.optim_wrapper.type = "AmpOptimWrapper"
    cfg.optim_wrapper.loss_scale = "dynamic"


def use_tta(cfg: Any) -> None:
    """``--tta``: the config's test-time-augmentation pipeline and model, as mmseg's test.py."""
    if "tta_pipeline" not in cfg or "tta_model" not in cfg:
        raise ValueError("--tta needs tta_pipeline and tta_model in the config")
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def format_metrics(metrics: dict, keys: Sequence[str] = SEGMENTATION_METRICS) -> str:
    """One line, e.g. ``mIoU=41.23 mAcc=51.07 aAcc=79.90``."""
    return " ".join(f"{k}={float(metrics[k]):.2f}" for k in keys if k in metrics)
