"""The corruption-robustness runner shared by mmdet and mmseg (one runner, one adapter per task).

What a task supplies is a :class:`TaskAdapter`: how mmengine's metric names map to ours, which
metrics are the headline ones, their scale, the plugin module to import, config tweaks. The rest
is common:

* :func:`insert_corrupt_transform` puts ``Corrupt`` right after the image-loading step of a
  pipeline, found by type (``LoadImageFromFile``, any ``LoadImage*``), not at a fixed index;
* :class:`RobustnessEvaluator` builds the mmengine ``Runner`` once from the config, loads the
  checkpoint once (mmengine's ``load_or_resume`` runs once per runner), builds the test dataset
  once, and per grid cell only swaps that dataset's pipeline and builds a new test dataloader
  around it before running the test loop;
* ``--corrupt-on batch`` (:func:`enable_batch_corruption`) instead corrupts whole batches on
  the model's device in a data preprocessor (``corrupt_preprocessor.py``), at the images'
  native resolution like the pipeline transform; per cell only its (corruption, severity)
  changes, the dataloader stays;
* ``--backend`` and ``--corrupt-on`` default to ``auto`` (:func:`resolve_corruption_defaults`):
  torch + batch when the model runs on CUDA, numpy + pipeline elsewhere; ``--backend numpy``
  alone is the reference on a GPU. The choice is printed and recorded in the results;
* :func:`build_robustness_parser` has mmdet's ``test_robustness.py`` flags plus ``--backend``,
  ``--resume`` and ``--shard i/n``; :func:`robustness_main` wires everything: the grid runner
  (atomic per-cell writes, resume, progress with images/s and ETA), our results JSON, the pickle
  layout mmdet's ``robustness_eval.py`` reads, and the P / mPC / rPC prints.

Distributed runs (``--launcher pytorch`` under torchrun, ``slurm`` under srun): every rank
evaluates every cell on its part of the data (mmengine's sampler and evaluator split and gather),
rank 0 writes. On a machine without CUDA the process group is initialised with gloo here, since
mmengine's initialiser calls ``torch.cuda.set_device`` (see :func:`prepare_cpu_distributed`).

Output files (all paths printed, made absolute):

* results JSON (our schema): ``<--out stem>.json`` when ``--out X.pkl`` is given, else
  ``<work_dir>/robustness_<config stem>.json``; a shard ``i/n`` adds ``.shard<i>-of-<n>``;
* ``--out X.pkl``: the ``{corruption: {severity: {'coco/bbox_mAP': ...}}}`` layout that
  ``robustness_eval.get_results`` reads (written when the clean cell is present).
  Unlike mmdet's tool, ``--out`` is not a dump of raw predictions.

Configs may carry ``transfer = dict(backbone='ant', mode='fixed-feature')``; it fills the
``backbone`` and ``transfer_mode`` fields of the results.
"""
from __future__ import annotations

import argparse
import copy
import importlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..corruptions import CORRUPTION_GROUPS, resolve_corruptions
from ..grid import Cell, build_cells, parse_shard, pending_cells, prepare_results, run_grid, select_shard
from ..results import ResultsError, file_sha256, get_cell, new_results, to_mmdet_robustness_pickle

CORRUPT_TYPE = "Corrupt"

# ----------------------------------------------------------------------------- pipelines


def step_type_name(step: Mapping) -> str:
    """The bare type name of a pipeline step: ``'mmdet.LoadImageFromFile'`` and the class
    ``LoadImageFromFile`` both give ``'LoadImageFromFile'``."""
    kind = step.get("type") if isinstance(step, Mapping) else None
    if isinstance(kind, str):
        return kind.rsplit(".", 1)[-1]
    if isinstance(kind, type):
        return kind.__name__
    return type(step).__name__ if not isinstance(step, Mapping) else str(kind)


def is_image_loading_step(step: Mapping) -> bool:
    """True for ``LoadImageFromFile``, ``LoadImageFromNDArray``, any other ``LoadImage*`` and
    ``LoadMultiChannelImageFromFiles``."""
    name = step_type_name(step)
    return name.startswith("LoadImage") or name.startswith("LoadMultiChannelImage")


def find_image_loading_step(pipeline: Sequence[Mapping]) -> int:
    """Index of the first image-loading step; ``ValueError`` listing the steps when none."""
    for index, step in enumerate(pipeline):
        if is_image_loading_step(step):
            return index
    names = [step_type_name(s) for s in pipeline]
    raise ValueError("no image-loading step (LoadImageFromFile or another LoadImage*) in the "
                     f"test pipeline {names}: cannot place the Corrupt transform")


def insert_corrupt_transform(pipeline: Sequence[Mapping], corrupt_cfg: Mapping | None) -> list:
    """A copy of ``pipeline`` with ``corrupt_cfg`` right after its image-loading step.

    ``corrupt_cfg`` is a transform config (``dict(type='Corrupt', corruption=..., severity=...,
    seed=..., backend=...)``); its ``type`` defaults to ``'Corrupt'``. ``None`` returns an
    unchanged copy (the clean cell). Refuses a pipeline that already corrupts images.
    """
    steps = [copy.deepcopy(dict(step)) if isinstance(step, Mapping) else step for step in pipeline]
    if corrupt_cfg is None:
        return steps
    already = [i for i, s in enumerate(steps) if isinstance(s, Mapping) and step_type_name(s) == CORRUPT_TYPE]
    if already:
        raise ValueError(f"the test pipeline already has a Corrupt step (index {already[0]}); "
                         "remove it from the config: the robustness runner inserts its own")
    at = find_image_loading_step(steps) + 1
    transform = {"type": CORRUPT_TYPE, **dict(corrupt_cfg)}
    steps.insert(at, transform)
    return steps


def corrupt_transform_cfg(cell: Cell, seed: int = 0, backend: str = "numpy") -> dict | None:
    """The ``Corrupt`` config of one grid cell (None for the clean cell)."""
    if cell.is_clean:
        return None
    return dict(type=CORRUPT_TYPE, corruption=cell.corruption, severity=cell.severity,
                seed=int(seed), backend=backend)


def dataset_pipelines(dataset_cfg: Mapping) -> list:
    """The pipeline configs of a dataset config, through wrappers (``dataset=``/``datasets=``)."""
    if "pipeline" in dataset_cfg:
        return [dataset_cfg["pipeline"]]
    if "datasets" in dataset_cfg:
        return [p for d in dataset_cfg["datasets"] for p in dataset_pipelines(d)]
    if "dataset" in dataset_cfg:
        return dataset_pipelines(dataset_cfg["dataset"])
    return []


def check_test_pipeline(cfg: Any) -> None:
    """``ValueError`` (naming the problem) when the test dataset has no pipeline the Corrupt
    transform can go into: checked before any model is built."""
    pipelines = dataset_pipelines(cfg.test_dataloader.dataset)
    if not pipelines:
        raise ValueError("the test dataset config has no 'pipeline' (nor a wrapped dataset with one)")
    for pipeline in pipelines:
        insert_corrupt_transform(pipeline, dict(corruption="fog", severity=1))


def swap_dataset_pipeline(dataset: Any, dataset_cfg: Mapping, corrupt_cfg: Mapping | None) -> int:
    """Give a built dataset the pipeline of ``dataset_cfg`` with ``corrupt_cfg`` inserted.

    Walks dataset wrappers in step with their configs (``dataset=`` as in RepeatDataset,
    ``datasets=[...]`` as in ConcatDataset, mmengine's ``_SlicedDataset``). Returns the number
    of pipelines replaced; ``ValueError`` when there is none.
    """
    from mmengine.dataset import Compose

    def walk(obj: Any, cfg: Mapping) -> int:
        if type(obj).__name__ == "_SlicedDataset":
            return walk(obj._dataset, cfg)
        if "pipeline" in cfg and hasattr(obj, "pipeline"):
            obj.pipeline = Compose(insert_corrupt_transform(cfg["pipeline"], corrupt_cfg))
            return 1
        if "datasets" in cfg and hasattr(obj, "datasets"):
            return sum(walk(o, c) for o, c in zip(obj.datasets, cfg["datasets"]))
        if "dataset" in cfg and hasattr(obj, "dataset"):
            return walk(obj.dataset, cfg["dataset"])
        return 0

    swapped = walk(dataset, dataset_cfg)
    if not swapped:
        raise ValueError(f"found no pipeline to corrupt in the test dataset "
                         f"{type(dataset).__name__} (config keys: {sorted(dataset_cfg)})")
    return swapped


# ----------------------------------------------------------------------------- batch mode
# --corrupt-on batch: the corruption runs in a data preprocessor on the model's device
# (robust_transfer/integrations/corrupt_preprocessor.py), on the native images.

CORRUPT_ON = ("pipeline", "batch")
BATCH_BACKEND = "torch-batch"  # the results' backend field in batch mode (part of their identity)
PREPROCESSOR_MODULE = "robust_transfer.integrations.corrupt_preprocessor"


def _is_annotation_loading_step(step: Mapping) -> bool:
    name = step_type_name(step)
    return name.startswith("Load") and name.endswith("Annotations")


def batch_mode_pipeline(pipeline: Sequence[Mapping]) -> tuple[list, dict]:
    """The test pipeline of batch mode and the arguments of its resize.

    ``StashNativeImage`` goes right after the image-loading step and ``RestoreNativeImage`` right
    before the packing step, so the packed input is the native image while ``img_shape`` and
    ``scale_factor`` are the resize's. Between loading and packing only one ``Resize`` and
    annotation loading are allowed (anything else would be lost or would change the image: a
    ``ValueError`` names it and points at ``--corrupt-on pipeline``). Returns ``(steps,
    dict(interpolation=..., backend=...))`` (mmcv's defaults when there is no resize).
    """
    steps = [copy.deepcopy(dict(step)) if isinstance(step, Mapping) else step for step in pipeline]
    names = [step_type_name(s) for s in steps]
    if CORRUPT_TYPE in names:
        raise ValueError(f"the test pipeline already has a Corrupt step (index {names.index(CORRUPT_TYPE)}); "
                         "remove it from the config: the robustness runner adds its own corruption")
    load = find_image_loading_step(steps)
    packs = [i for i, name in enumerate(names) if name.startswith("Pack")]
    if not packs or packs[-1] < load:
        raise ValueError(f"--corrupt-on batch: no Pack*Inputs step after the image loading in the "
                         f"test pipeline {names}")
    pack = packs[-1]
    resize: dict = {}
    for index in range(load + 1, pack):
        step, name = steps[index], names[index]
        if _is_annotation_loading_step(step):
            continue
        if name == "Resize" and not resize:
            resize = {"interpolation": step.get("interpolation", "bilinear"),
                      "backend": step.get("backend", "cv2")}
            continue
        raise ValueError(f"--corrupt-on batch supports test pipelines that only load, resize (one "
                         f"Resize) and pack, but this one has {name} at index {index} ({names}); "
                         "use --corrupt-on pipeline")
    if pack != len(steps) - 1:
        raise ValueError(f"--corrupt-on batch: steps after {names[pack]} in the test pipeline {names}")
    steps.insert(pack, {"type": "RestoreNativeImage"})
    steps.insert(load + 1, {"type": "StashNativeImage"})
    return steps, resize or {"interpolation": "bilinear", "backend": "cv2"}


def _set_dataset_pipelines(dataset_cfg: Any, fn: Callable[[list], list]) -> int:
    """Replace every pipeline of a dataset config (through ``dataset=``/``datasets=`` wrappers)
    by ``fn(pipeline)``; returns how many."""
    if "pipeline" in dataset_cfg:
        dataset_cfg["pipeline"] = fn(dataset_cfg["pipeline"])
        return 1
    if "datasets" in dataset_cfg:
        return sum(_set_dataset_pipelines(d, fn) for d in dataset_cfg["datasets"])
    if "dataset" in dataset_cfg:
        return _set_dataset_pipelines(dataset_cfg["dataset"], fn)
    return 0


def enable_batch_corruption(cfg: Any, seed: int = 0) -> None:
    """Set a config up for batch mode (in place): the test pipeline(s) of
    :func:`batch_mode_pipeline` and the model's data preprocessor wrapped in
    ``CorruptDataPreprocessor`` (native inputs, the pipeline's resize, no corruption until
    :meth:`RobustnessEvaluator.evaluate` sets one). Training settings are not touched."""
    importlib.import_module(PREPROCESSOR_MODULE)
    resizes: list[dict] = []

    def rewrite(pipeline: list) -> list:
        steps, resize = batch_mode_pipeline(pipeline)
        resizes.append(resize)
        return steps

    if not _set_dataset_pipelines(cfg.test_dataloader.dataset, rewrite):
        raise ValueError("the test dataset config has no 'pipeline' (nor a wrapped dataset with one)")
    if any(r != resizes[0] for r in resizes):
        raise ValueError(f"--corrupt-on batch: the test pipelines resize differently ({resizes})")
    model = cfg.get("model")
    inner = model.get("data_preprocessor") if model is not None else None
    if not isinstance(inner, Mapping) or "type" not in inner:
        raise ValueError("--corrupt-on batch wraps the model's data_preprocessor, but the config "
                         "has none (model.data_preprocessor = dict(type=...))")
    model["data_preprocessor"] = dict(type="CorruptDataPreprocessor", preprocessor=inner,
                                      seed=int(seed), native_inputs=True, resize=resizes[0])


def find_corrupt_preprocessor(model: Any):
    """The ``CorruptDataPreprocessor`` of a built (possibly DDP-wrapped) model."""
    from .corrupt_preprocessor import CorruptDataPreprocessor

    module = getattr(model, "module", model)
    pre = getattr(module, "data_preprocessor", None)
    if not isinstance(pre, CorruptDataPreprocessor):
        raise RuntimeError(f"--corrupt-on batch: the model's data preprocessor is "
                           f"{type(pre).__name__}, not CorruptDataPreprocessor")
    return pre


# ----------------------------------------------------------------------------- task adapter


def _strip_prefix(key: str) -> str:
    return key.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class TaskAdapter:
    """What differs between tasks; everything else in this module is shared.

    Attributes:
        task: results ``task`` field (``'detection'``, ``'segmentation'``).
        headline_metrics: our names of the metrics P / mPC / rPC are reported for (in order), or
            a function of the config giving them (e.g. bbox only for a box-only model).
        metric_keys: explicit map from mmengine's metric names to ours
            (``{'coco/bbox_mAP': 'bbox_mAP'}``); unmapped numeric metrics are kept with their
            ``prefix/`` stripped when ``keep_unmapped``.
        metric_scale: full-scale value of the metrics (1 for COCO AP, 100 for mIoU in percent).
        pickle_prefix: prefix of the keys in the mmdet ``robustness_eval`` pickle (``'coco'``);
            None: the task writes no such pickle.
        print_labels: headline metric -> (group, metric) for the mmdet-style final prints, e.g.
            ``{'bbox_mAP': ('bbox', 'mAP')}``; metrics not listed print under their own name.
        plugin_module: imported before the runner is built (registers ``Corrupt``, shims).
        prepare_config: task tweaks to the loaded config (in place), after ``--cfg-options``.
        configure_show: turn on drawing into a folder (``--show-dir``) in the config; None:
            ``--show-dir`` is refused for this task.
        set_show_dir: point the built runner's visualisation at the folder of one cell.
        describe_dataset: the results ``dataset`` field from the config.
        empty_result_value: the headline value of a cell whose evaluator returned nothing at all
            (mmdet's CocoMetric returns ``{}`` when the model detected nothing in the whole
            cell, which under a strong corruption is a real outcome: AP 0). None: an empty
            result is an error.
    """

    task: str
    headline_metrics: Sequence[str] | Callable[[Any], Sequence[str]]
    metric_keys: Mapping[str, str] = field(default_factory=dict)
    keep_unmapped: bool = True
    metric_scale: float = 1.0
    pickle_prefix: str | None = None
    print_labels: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    plugin_module: str | None = None
    prepare_config: Callable[[Any], None] | None = None
    configure_show: Callable[[Any, str], None] | None = None
    set_show_dir: Callable[[Any, str], None] | None = None
    describe_dataset: Callable[[Any], str] | None = None
    empty_result_value: float | None = None

    def headlines(self, cfg: Any = None) -> list[str]:
        metrics = self.headline_metrics(cfg) if callable(self.headline_metrics) else self.headline_metrics
        return list(metrics)

    def convert_metrics(self, raw: Mapping[str, Any], headlines: Sequence[str]) -> dict[str, float]:
        """mmengine's metrics dict -> ours (plain floats); ``ValueError`` when a headline
        metric is missing, naming the keys that are there."""
        if not raw and self.empty_result_value is not None:
            return {name: float(self.empty_result_value) for name in headlines}
        out: dict[str, float] = {}
        for key, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
                continue
            name = self.metric_keys.get(key)
            if name is None:
                if not self.keep_unmapped:
                    continue
                name = _strip_prefix(key)
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
    ds = cfg.test_dataloader.dataset
    while "pipeline" not in ds and "dataset" in ds:
        ds = ds.dataset
    root = Path(str(ds.get("data_root", "") or "")).name
    source = ds.get("ann_file") or ds.get("data_prefix") or ""
    if isinstance(source, Mapping):
        source = ",".join(f"{k}={v}" for k, v in sorted(source.items()))
    return f"{ds.get('type', 'dataset')}:{'/'.join(p for p in (root, str(source)) if p)}"


def drop_pretrained_weights(cfg: Any) -> None:
    """Test-time: the weights come from the checkpoint, so no ImageNet backbone download or
    file is needed: remove ``Pretrained`` init of the backbone and ``model.pretrained``."""
    model = cfg.get("model", {})
    if model.get("pretrained") is not None:
        model["pretrained"] = None
    backbone = model.get("backbone")
    if isinstance(backbone, Mapping) and isinstance(backbone.get("init_cfg"), Mapping) \
            and backbone["init_cfg"].get("type") == "Pretrained":
        backbone["init_cfg"] = None


# ----------------------------------------------------------------------------- distributed


def env_rank() -> int:
    """This process's rank from the launcher's environment (0 when not launched)."""
    for name in ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK"):
        if name in os.environ:
            return int(os.environ[name])
    return 0


def prepare_cpu_distributed(cfg: Any, launcher: str) -> None:
    """Shim: run ``--launcher pytorch`` on CPU-only machines (gloo).

    mmengine 0.10's ``init_dist`` calls ``torch.cuda.set_device`` and its ``wrap_model`` gives
    DDP ``device_ids=[LOCAL_RANK]``, both of which fail without CUDA. When CUDA is absent we
    initialise the process group with gloo ourselves (mmengine then skips its own
    initialisation) and let DDP wrap the CPU model without device ids.
    """
    import torch
    import torch.distributed as dist

    if launcher != "pytorch" or torch.cuda.is_available():
        return
    cfg.setdefault("env_cfg", {}).setdefault("dist_cfg", {})["backend"] = "gloo"
    if cfg.get("model_wrapper_cfg") is None:
        cfg["model_wrapper_cfg"] = dict(type="MMDistributedDataParallel", device_ids=None)
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")


# ----------------------------------------------------------------------------- the evaluator


class RobustnessEvaluator:
    """An mmengine Runner built once; :meth:`evaluate` runs one grid cell.

    The checkpoint is loaded once, by the first cell's ``runner.test()`` (after the
    ``before_run`` hooks, as mmengine orders it; ``load_or_resume`` is a no-op from then on,
    and the tests check that the log holds one load). The test dataset is built once
    (annotations parsed once). ``corrupt_on='pipeline'``: each cell gives it a new pipeline and a
    new dataloader (no persistent workers: each loader is used once). ``corrupt_on='batch'``
    (a config prepared by :func:`enable_batch_corruption`): the dataloader of the config is kept
    for every cell, and each cell only sets the (corruption, severity) of the model's
    ``CorruptDataPreprocessor`` (None for the clean cell).
    """

    def __init__(self, cfg: Any, adapter: TaskAdapter, *, seed: int = 0, backend: str = "numpy",
                 show_dir: str | None = None, headlines: Sequence[str] | None = None,
                 corrupt_on: str = "pipeline"):
        from mmengine.runner import Runner

        if corrupt_on not in CORRUPT_ON:
            raise ValueError(f"corrupt_on must be one of {', '.join(CORRUPT_ON)}, got {corrupt_on!r}")
        self.cfg = cfg
        self.adapter = adapter
        self.seed = int(seed)
        self.backend = backend
        self.corrupt_on = corrupt_on
        self.show_dir = show_dir
        self.headlines = list(headlines) if headlines is not None else adapter.headlines(cfg)
        if "runner_type" in cfg:
            from mmengine.registry import RUNNERS

            self.runner = RUNNERS.build(cfg)
        else:
            self.runner = Runner.from_cfg(cfg)
        self._dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
        self._loader_cfg = copy.deepcopy(cfg.test_dataloader)
        self._loader_cfg["persistent_workers"] = False
        self.dataset = self.runner.test_loop.dataloader.dataset  # built once, here
        self.preprocessor = find_corrupt_preprocessor(self.runner.model) if corrupt_on == "batch" else None
        self.evaluated: list[Cell] = []

    @property
    def rank(self) -> int:
        return self.runner.rank

    @property
    def world_size(self) -> int:
        return self.runner.world_size

    @property
    def num_images(self) -> int:
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
            self.adapter.set_show_dir(self.runner, os.path.join(self.show_dir, _cell_dirname(cell)))
        raw = self.runner.test()
        self.evaluated.append(cell)
        return self.adapter.convert_metrics(raw, self.headlines)


def _cell_dirname(cell: Cell) -> str:
    return "clean" if cell.is_clean else f"{cell.corruption}_{cell.severity}"


# ----------------------------------------------------------------------------- command line


def build_robustness_parser(task: str, description: str | None = None) -> argparse.ArgumentParser:
    """The flags of mmdet's ``test_robustness.py`` plus ``--backend``, ``--resume``, ``--shard``."""
    from mmengine.config import DictAction

    p = argparse.ArgumentParser(
        description=description or f"Evaluate a {task} model under image corruptions "
        "(corruption x severity grid; model built and checkpoint loaded once)")
    p.add_argument("config", help="test config file path")
    p.add_argument("checkpoint", help="checkpoint file")
    p.add_argument("--out", help="write the pickle that mmdet's robustness_eval.py reads here "
                   "(.pkl/.pickle); our results JSON goes next to it with the suffix .json")
    p.add_argument("--corruptions", nargs="+", default=["benchmark"], metavar="NAME",
                   help="corruption names and/or groups (all, benchmark, noise, blur, weather, "
                   "digital, holdout), or None for the clean data only; default: benchmark")
    p.add_argument("--severities", nargs="+", type=int, default=[0, 1, 2, 3, 4, 5],
                   help="severity levels, 0 = clean; default 0 1 2 3 4 5")
    p.add_argument("--work-dir", help="folder for logs and (without --out) the results JSON")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the corruptions' random streams (default 0) and of the runner")
    p.add_argument("--backend", choices=[AUTO, "numpy", "torch"], default=AUTO,
                   help="corruption backend. auto (default): torch with --corrupt-on batch (its "
                   "only backend), numpy (the reference) with --corrupt-on pipeline; the choice "
                   "is printed and recorded in the results' backend field")
    p.add_argument("--corrupt-on", choices=[AUTO, *CORRUPT_ON], default=AUTO,
                   help="where images are corrupted. auto (default): batch when the model runs "
                   "on CUDA (so the GPU never waits for data-loader workers corrupting on the "
                   "CPU) unless --backend numpy is given, pipeline otherwise; printed and "
                   "recorded in the results (extra.corrupt_on). pipeline: a Corrupt transform in "
                   "the data pipeline, per image, right after loading. batch: the whole collated "
                   "batch on the model's device (torch backend), in a data preprocessor before "
                   "normalisation; the loader delivers the native images and each is resized "
                   "after the corruption exactly as the pipeline's Resize would, so the "
                   "corruption still hits the image at its stored resolution (same images as "
                   "pipeline mode with --backend torch, byte for byte on the CPU). Test "
                   "pipelines may only load, Resize and pack. Its results are recorded with "
                   f"backend '{BATCH_BACKEND}' and never resumed into or merged with "
                   "pipeline-mode results. The numpy reference on a GPU: --backend numpy")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in the results file: evaluate only missing cells")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="evaluate only shard I of N of the cells (0-based); merge the shard "
                   "files with `robust-transfer merge`")
    p.add_argument("--show-dir", help="draw predictions into this folder, one subfolder per cell")
    p.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none",
                   help="job launcher")
    p.add_argument("--local_rank", "--local-rank", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--final-prints", nargs="+", choices=["P", "mPC", "rPC"], default=["mPC"],
                   help="robustness metrics to print at the end (default mPC)")
    p.add_argument("--final-prints-aggregate", choices=["all", "benchmark"], default="benchmark",
                   help="average over the benchmark corruptions (default) or all of them")
    p.add_argument("--cfg-options", nargs="+", action=DictAction,
                   help="override config settings, xxx=yyy (see mmengine's DictAction)")
    return p


def cells_from_args(args: argparse.Namespace) -> list[Cell]:
    """The grid (after ``--shard``) from the parsed flags; ``ValueError`` on bad values."""
    spec = list(args.corruptions)
    if any(str(s).lower() == "none" for s in spec):
        if len(spec) > 1:
            raise ValueError("--corruptions None means clean data only: give it alone")
        cells = build_cells(None, [0])
    else:
        cells = build_cells(resolve_corruptions(spec), args.severities)
    index, count = parse_shard(args.shard)
    shard = select_shard(cells, index, count)
    if not shard:
        raise ValueError(f"--shard {args.shard}: this shard has no cells (the grid has {len(cells)})")
    return shard


def output_paths(args: argparse.Namespace, work_dir: str, model: str) -> tuple[Path, Path | None]:
    """(results JSON, mmdet pickle or None), absolute."""
    shard = "" if args.shard in (None, "") else ".shard{}-of-{}".format(*parse_shard(args.shard))
    if args.out:
        if not args.out.endswith((".pkl", ".pickle")):
            raise ValueError(f"--out {args.out!r}: the file must end with .pkl or .pickle")
        out = Path(args.out).resolve()
        pkl = out.with_name(out.stem + shard + out.suffix)
        return pkl.with_suffix(".json"), pkl
    return (Path(work_dir).resolve() / f"robustness_{model}{shard}.json"), None


def load_framework_config(args: argparse.Namespace, adapter: TaskAdapter):
    """``args.config`` with our plugin imported, ``--cfg-options`` merged, the launcher set and
    an absolute work_dir (``--work-dir``, the config's, or ``work_dirs/<config stem>``), as
    mmdet's and mmseg's own tools do it. Shared by the train, test and robustness tools."""
    from mmengine.config import Config

    if adapter.plugin_module:
        importlib.import_module(adapter.plugin_module)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get("work_dir") is None:
        cfg.work_dir = os.path.join("work_dirs", Path(args.config).stem)
    cfg.work_dir = str(Path(cfg.work_dir).resolve())
    return cfg


AUTO = "auto"


def model_device() -> str:
    """The device type mmengine's Runner puts the model on (``'cuda'``, ``'cpu'``, ...)."""
    from mmengine.device import get_device

    return get_device()


def resolve_corruption_defaults(backend: str | None, corrupt_on: str | None,
                                device: str) -> tuple[str, str]:
    """``(backend, corrupt_on)`` with ``auto`` (or None) resolved for a model on ``device``.

    ``corrupt_on`` auto is batch on CUDA, because in pipeline mode the data-loader workers
    corrupt every image on the CPU and the GPU waits for them; elsewhere it stays pipeline (on
    a CPU the batch path saves nothing). An explicit ``--backend numpy`` makes it pipeline on
    CUDA too, so the reference is one flag away. ``backend`` auto follows the mode, whatever
    the device: torch with batch (its only backend), numpy (the reference) with pipeline.
    Batch mode with the numpy backend is a ``ValueError``."""
    backend = AUTO if backend is None else backend
    corrupt_on = AUTO if corrupt_on is None else corrupt_on
    on_cuda = str(device).split(":")[0] == "cuda"
    if corrupt_on == AUTO:
        corrupt_on = "batch" if on_cuda and backend != "numpy" else "pipeline"
    if corrupt_on == "batch":
        if backend not in (AUTO, "torch"):
            raise ValueError(f"--corrupt-on batch corrupts with the torch backend (corrupt_batch on "
                             f"the device); --backend {backend} is only for --corrupt-on pipeline")
        return "torch", corrupt_on
    return ("numpy" if backend == AUTO else backend), corrupt_on


def resolve_backend(args: argparse.Namespace, device: str | None = None) -> str:
    """Resolve ``--backend`` and ``--corrupt-on`` (see :func:`resolve_corruption_defaults`) for
    a model on ``device`` (default: where mmengine will put it). Sets ``args.backend`` and
    ``args.corrupt_on``, records in ``args.corruption_defaults`` which were automatic; returns
    the backend."""
    given = (getattr(args, "backend", None), getattr(args, "corrupt_on", None))
    device = model_device() if device is None else device
    args.backend, args.corrupt_on = resolve_corruption_defaults(*given, device)
    args.corruption_defaults = {"device": str(device),
                                "auto": [flag for flag, value in zip(("backend", "corrupt_on"), given)
                                         if value in (None, AUTO)]}
    return args.backend


def describe_corruption_choice(args: argparse.Namespace) -> str:
    """One line naming the resolved ``--backend`` / ``--corrupt-on`` and which were automatic."""
    defaults = getattr(args, "corruption_defaults", None) or {}
    auto = defaults.get("auto") or []
    why = (f" ({' and '.join('--' + a.replace('_', '-') for a in auto)} auto: model on "
           f"{defaults.get('device', '?')})") if auto else ""
    return f"[robustness] corruptions: --backend {args.backend} --corrupt-on {args.corrupt_on}{why}"


def load_config(args: argparse.Namespace, adapter: TaskAdapter):
    """The config with ``--cfg-options``, work_dir, launcher, checkpoint and task tweaks (and,
    with ``--corrupt-on batch``, the batch-mode pipeline and preprocessor)."""
    cfg = load_framework_config(args, adapter)
    if args.seed is not None:
        cfg.randomness = dict(seed=args.seed)
    drop_pretrained_weights(cfg)
    if adapter.prepare_config is not None:
        adapter.prepare_config(cfg)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.show_dir:
        if adapter.configure_show is None:
            raise ValueError(f"--show-dir is not supported for the {adapter.task} task")
        adapter.configure_show(cfg, str(Path(args.show_dir).resolve()))
    if getattr(args, "corrupt_on", "pipeline") == "batch":
        enable_batch_corruption(cfg, seed=0 if args.seed is None else args.seed)
    return cfg


def make_results(args: argparse.Namespace, cfg: Any, adapter: TaskAdapter, headlines: Sequence[str]) -> dict:
    """A results document (no cells) describing this evaluation."""
    transfer = cfg.get("transfer") or {}
    extra = {"corruptions": list(args.corruptions), "severities": list(args.severities),
             "framework_config": str(Path(args.config).resolve()),
             "corrupt_on": getattr(args, "corrupt_on", "pipeline")}
    if getattr(args, "corruption_defaults", None):
        extra["corruption_defaults"] = dict(args.corruption_defaults)
    if args.shard:
        extra["shard"] = args.shard
    return new_results(
        task=adapter.task, model=Path(args.config).stem, metrics=headlines,
        backbone=transfer.get("backbone"), transfer_mode=transfer.get("mode"),
        config=Path(args.config).name, checkpoint=str(Path(args.checkpoint).resolve()),
        checkpoint_sha256=file_sha256(args.checkpoint),
        dataset=(adapter.describe_dataset or default_describe_dataset)(cfg),
        seed=0 if args.seed is None else args.seed,
        backend=BATCH_BACKEND if getattr(args, "corrupt_on", "pipeline") == "batch" else args.backend,
        metric_scale=adapter.metric_scale, extra=extra)


def print_robustness_summary(results: Mapping, adapter: TaskAdapter, prints: Sequence[str] = ("mPC",),
                             aggregate: str = "benchmark", file=None) -> dict:
    """Print P / mPC / rPC of every headline metric, mmdet-style lines for ``prints`` and a
    table with all three. mPC averages the cells evaluated for the corruptions of
    ``aggregate`` in this run (missing cells are listed, never counted as zero).
    Returns ``{metric: Summary}``."""
    from ..metrics import summarize
    from ..report import terminal_table
    from ..results import cells_by_int_severity

    file = file or sys.stdout
    cells = cells_by_int_severity(results)
    grid = [Cell(c, int(s)) for c in results["cells"] for s in results["cells"][c]]
    requested = results.get("extra", {}).get("corruptions")
    try:
        run_corruptions = resolve_corruptions(requested) if requested else []
    except ValueError:
        run_corruptions = []
    run_corruptions = run_corruptions or sorted({c.corruption for c in grid if not c.is_clean})
    scope = [c for c in CORRUPTION_GROUPS[aggregate] if c in run_corruptions]
    severities = sorted({int(s) for s in results.get("extra", {}).get("severities", [])} - {0}) \
        or sorted({c.severity for c in grid if not c.is_clean}) or [1, 2, 3, 4, 5]
    summaries = {m: summarize(cells, m, scope, severities) for m in results["metrics"]}
    scale = float(results.get("metric_scale", 1.0))
    grid_text = (f"{len(scope)} {aggregate} corruption(s) x severities {severities}" if scope
                 else f"no {aggregate} corruption in this run: P only")
    print(f"\nmodel: {results['model']}  ({grid_text})", file=file)
    for metric, s in summaries.items():
        group, name = adapter.print_labels.get(metric, (metric, metric))
        if "P" in prints:
            print(f"Performance on Clean Data [P] ({group})\n{name:5} =  {_fmt(s.P, scale)}", file=file)
        if "mPC" in prints:
            print(f"Mean Performance under Corruption [mPC] ({group})\n{name:5} =  {_fmt(s.mPC, scale)}",
                  file=file)
        if "rPC" in prints:
            rpc = "n/a" if s.rPC is None else f"{100 * s.rPC:0.1f} %"
            print(f"Relative Performance under Corruption [rPC] ({group})\n{name:5} => {rpc}", file=file)
    rows = [[m, _fmt(s.P, scale), _fmt(s.mPC, scale), "n/a" if s.rPC is None else f"{100 * s.rPC:.1f}%",
             str(len(s.missing))] for m, s in summaries.items()]
    print(terminal_table(["metric", "P", "mPC", "rPC", "missing cells"], rows,
                         f" {results['model']} ({aggregate}) "), file=file)
    return summaries


def _fmt(value: float | None, scale: float) -> str:
    if value is None:
        return "n/a"
    return f"{value:0.3f}" if scale == 1.0 else f"{value:0.2f}"


def robustness_main(argv: Sequence[str] | None, adapter: TaskAdapter) -> dict:
    """The whole ``test_robustness.py``: returns the results document (also on non-zero ranks,
    where it holds the same cells but is not written)."""
    parser = build_robustness_parser(adapter.task)
    args = parser.parse_args(argv)
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(args.local_rank)
    try:
        cells = cells_from_args(args)
        resolve_backend(args)
        cfg = load_config(args, adapter)
        headlines = adapter.headlines(cfg)
        json_path, pkl_path = output_paths(args, cfg.work_dir, Path(args.config).stem)
        if not Path(args.checkpoint).is_file():
            raise ValueError(f"checkpoint {args.checkpoint!r} is not a file")
        if args.corrupt_on == "pipeline" and any(not cell.is_clean for cell in cells):
            check_test_pipeline(cfg)  # (batch mode: checked by enable_batch_corruption)
        results = make_results(args, cfg, adapter, headlines)
        results = prepare_results(results, json_path, args.resume)
    except (ValueError, ResultsError) as error:
        parser.error(str(error))
    rank = env_rank() if args.launcher != "none" else 0
    is_writer = rank == 0
    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if is_writer else (lambda *a: None)
    todo = pending_cells(cells, results)
    say(f"[robustness] {adapter.task}: {len(cells)} cell(s), {len(todo)} to evaluate; "
        f"results -> {json_path}"
        + (f"; mmdet pickle -> {pkl_path}" if pkl_path and adapter.pickle_prefix else ""))
    say(describe_corruption_choice(args))

    if todo:
        prepare_cpu_distributed(cfg, args.launcher)
        evaluator = RobustnessEvaluator(cfg, adapter, seed=results["seed"], backend=args.backend,
                                        show_dir=str(Path(args.show_dir).resolve()) if args.show_dir else None,
                                        headlines=headlines, corrupt_on=args.corrupt_on)
        is_writer = evaluator.rank == 0
        barrier = None
        if evaluator.world_size > 1:
            from mmengine.dist import barrier
        timings: dict[str, float] = {"start": time.perf_counter()}

        def on_cell(cell: Cell, metrics: Mapping[str, float]) -> None:
            now = time.perf_counter()
            elapsed, timings["start"] = now - timings["start"], now
            if is_writer:
                shown = " ".join(f"{m}={metrics[m]:.4g}" for m in headlines)
                print(f"[robustness] {cell}: {shown} ({elapsed:.1f} s, "
                      f"{evaluator.num_images / max(elapsed, 1e-9):.1f} img/s)", file=sys.stderr, flush=True)

        results = run_grid(cells, evaluator.evaluate, results, json_path, resume=args.resume,
                           write=is_writer, images_per_cell=evaluator.num_images,
                           progress=is_writer, on_cell=on_cell, barrier=barrier)
        if barrier is not None:
            barrier()
    if is_writer:
        finish(results, adapter, args, pkl_path)
    return results


def finish(results: dict, adapter: TaskAdapter, args: argparse.Namespace, pkl_path: Path | None) -> None:
    """Write the mmdet pickle (when asked and possible) and print the summary."""
    if pkl_path is not None and adapter.pickle_prefix:
        if parse_shard(args.shard)[1] > 1:
            print(f"[robustness] shard {args.shard}: {pkl_path} not written; merge the shards "
                  "(`robust-transfer merge`), then `robust-transfer export-mmdet`", file=sys.stderr)
        elif get_cell(results, "clean", 0) is None:
            print(f"[robustness] no clean cell (severity 0) in this run: {pkl_path} not written "
                  "(mmdet's layout needs it)", file=sys.stderr)
        elif set(results["cells"]) == {"clean"}:  # --corruptions None: mmdet's tool names it 'None'
            import pickle

            clean = {f"{adapter.pickle_prefix}/{k}": v for k, v in get_cell(results, "clean", 0).items()}
            pkl_path.parent.mkdir(parents=True, exist_ok=True)
            with open(pkl_path, "wb") as handle:
                pickle.dump({"None": {0: clean}}, handle)
            print(f"[robustness] wrote {pkl_path}", file=sys.stderr)
        else:
            to_mmdet_robustness_pickle(results, pkl_path, prefix=adapter.pickle_prefix)
            print(f"[robustness] wrote {pkl_path}", file=sys.stderr)
    print("\nAggregated results:")
    print_robustness_summary(results, adapter, args.final_prints, args.final_prints_aggregate)
