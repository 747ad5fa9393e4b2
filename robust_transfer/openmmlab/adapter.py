"""The task adapter: what differs between detection and segmentation, as data.

Everything else in this package (config loading, the Runner, pipeline surgery, the evaluator,
the tools' mains) is shared; a task is one frozen :class:`TaskAdapter` instance
(:data:`~robust_transfer.openmmlab.detection.DETECTION`,
:data:`~robust_transfer.openmmlab.segmentation.SEGMENTATION`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .pipeline import leaf_dataset_cfg


@dataclass(frozen=True)
class TaskAdapter:
    """What differs between tasks.

    Attributes:
        task: results ``task`` field (``'detection'``, ``'segmentation'``).
        headline_metrics: our names of the metrics P / mPC / rPC are reported for (in order), or
            a function of the config giving them (e.g. bbox only for a box-only model).
        registry_scope: the package whose ``registry.RUNNERS`` builds a config's ``runner_type``
            (``'mmdet'``, ``'mmseg'``; their registries fall back to mmengine's).
        metric_keys: explicit map from mmengine's metric names to ours
            (``{'coco/bbox_mAP': 'bbox_mAP'}``); unmapped numeric metrics are kept with their
            ``prefix/`` stripped when ``keep_unmapped``.
        metric_scale: full-scale value of the metrics (1 for COCO AP, 100 for mIoU in percent).
        pickle_prefix: prefix of the keys in the mmdet ``robustness_eval`` pickle (``'coco'``);
            None: the task writes no such pickle.
        print_labels: headline metric -> (group, metric) for the mmdet-style final prints, e.g.
            ``{'bbox_mAP': ('bbox', 'mAP')}``; metrics not listed print under their own name.
        plugin_module: imported before a config is read (registers ``Corrupt``, shims).
        prepare_config: task tweaks to a loaded test config (in place), after ``--cfg-options``
            (``tools/test.py`` and the robustness tool).
        check_evaluator: the robustness tool's early check (``ValueError``, or a fix in place)
            that the config's test evaluator computes the headline metrics, before any model is
            built; None: found out after the first cell.
        configure_show: turn on drawing in the config, into a folder when one is given
            (``tools/test.py --show-dir``); None: ``--show``/``--show-dir`` are refused.
        set_show_dir: point the built runner's visualisation at the folder of one grid cell
            (the robustness tool calls ``configure_show`` without a folder, then this per cell).
        describe_dataset: the results ``dataset`` field from the config (default:
            :func:`default_describe_dataset`).
        empty_result_value: the headline value of a cell whose evaluator returned nothing at all
            (mmdet's CocoMetric returns ``{}`` when the model detected nothing in the whole
            cell, which under a strong corruption is a real outcome: AP 0). None: an empty
            result is an error.
        tidy_metrics: applied to the evaluator's raw dict before conversion (mmseg's float32
            numbers -> the floats they print as); None: as they come.
        check_backbone: ``tools/train.py`` checks the config's ImageNet backbone file with it
            before training (raising ``CheckpointError``); None: no check, and no
            ``--no-check-backbone`` flag.
        test_out: what ``tools/test.py --out`` writes, as the framework's own tool does:
            ``'pickle'`` (mmdet: a dump of the predictions) or ``'folder'`` (mmseg: prediction
            images for offline evaluation).
        printed_metrics: mmengine metric names ``tools/test.py`` prints as its last line
            (``mIoU=41.23 ...``); empty: nothing printed beyond mmengine's log.
    """

    task: str
    headline_metrics: Sequence[str] | Callable[[Any], Sequence[str]]
    registry_scope: str = "mmengine"
    metric_keys: Mapping[str, str] = field(default_factory=dict)
    keep_unmapped: bool = True
    metric_scale: float = 1.0
    pickle_prefix: str | None = None
    print_labels: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    plugin_module: str | None = None
    prepare_config: Callable[[Any], None] | None = None
    check_evaluator: Callable[[Any], None] | None = None
    configure_show: Callable[[Any, str | None], None] | None = None
    set_show_dir: Callable[[Any, str], None] | None = None
    describe_dataset: Callable[[Any], str] | None = None
    empty_result_value: float | None = None
    tidy_metrics: Callable[[dict], dict] | None = None
    check_backbone: Callable[[Any], None] | None = None
    test_out: str = "pickle"
    printed_metrics: Sequence[str] = ()

    def headlines(self, cfg: Any = None) -> list[str]:
        """Our names of the headline metrics for ``cfg``."""
        metrics = self.headline_metrics(cfg) if callable(self.headline_metrics) else self.headline_metrics
        return list(metrics)

    def dataset_description(self, cfg: Any) -> str:
        """The results ``dataset`` field of ``cfg``'s test data."""
        return (self.describe_dataset or default_describe_dataset)(cfg)

    def convert_metrics(self, raw: Mapping[str, Any], headlines: Sequence[str]) -> dict[str, float]:
        """mmengine's metrics dict -> ours (plain floats); ``ValueError`` when a headline
        metric is missing, naming the keys that are there."""
        if not raw and self.empty_result_value is not None:
            return {name: float(self.empty_result_value) for name in headlines}
        if self.tidy_metrics is not None:
            raw = self.tidy_metrics(dict(raw))
        out: dict[str, float] = {}
        for key, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
                continue
            name = self.metric_keys.get(key)
            if name is None:
                if not self.keep_unmapped:
                    continue
                name = key.rsplit("/", 1)[-1]
            try:
                out[name] = float(value)
            except (TypeError, ValueError):
                continue
        missing = [m for m in headlines if m not in out]
        if missing:
            raise ValueError(f"the evaluator returned no {missing} (it returned {sorted(raw)}); "
                             "check test_evaluator in the config")
        return out


def default_describe_dataset(cfg: Any) -> str:
    """``'<type>:<data_root basename>/<ann_file or data_prefix>'`` of the test dataset."""
    ds = leaf_dataset_cfg(cfg.test_dataloader.dataset)
    root = Path(str(ds.get("data_root", "") or "")).name
    source = ds.get("ann_file") or ds.get("data_prefix") or ""
    if isinstance(source, Mapping):
        source = ",".join(f"{k}={v}" for k, v in sorted(source.items()))
    return f"{ds.get('type', 'dataset')}:{'/'.join(p for p in (root, str(source)) if p)}"
