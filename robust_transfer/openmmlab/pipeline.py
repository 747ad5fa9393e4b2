"""Pipeline surgery: where the corruption goes in a test pipeline, for both frameworks.

* :func:`dataset_leaves` is the one walk through dataset wrappers (``dataset=`` as in
  RepeatDataset, ``datasets=[...]`` as in ConcatDataset, mmengine's ``_SlicedDataset``), over
  configs alone or over built datasets in step with their configs; everything below uses it.
* ``--corrupt-on pipeline``: :func:`insert_corrupt_transform` puts ``Corrupt`` right after the
  image-loading step, found by type (``LoadImageFromFile``, any ``LoadImage*``), not at a fixed
  index; :func:`swap_dataset_pipeline` gives a built test dataset that pipeline per grid cell.
* ``--corrupt-on batch``: :func:`enable_batch_corruption` keeps the native image through the
  pipeline (``StashNativeImage`` / ``RestoreNativeImage``) and wraps the model's data
  preprocessor in ``CorruptDataPreprocessor`` (``corrupt_preprocessor.py``), which corrupts whole
  batches on the model's device.
"""
from __future__ import annotations

import copy
import importlib
from typing import Any, Callable, Iterator, Mapping, Sequence

from ..grid import Cell

CORRUPT_TYPE = "Corrupt"
CORRUPT_ON = ("pipeline", "batch")
BATCH_BACKEND = "torch-batch"  # the results' backend field in batch mode (part of their identity)
PREPROCESSOR_MODULE = "robust_transfer.openmmlab.corrupt_preprocessor"

_CONFIG_ONLY = object()  # dataset_leaves' marker for "walk the configs, no built dataset"

# ----------------------------------------------------------------------------- the walk


def dataset_leaves(dataset_cfg: Mapping, dataset: Any = _CONFIG_ONLY) -> Iterator[tuple[Mapping, Any]]:
    """``(config, built dataset)`` of every dataset with a ``pipeline`` inside ``dataset_cfg``.

    Goes through ``dataset=`` and ``datasets=[...]`` wrappers. Without ``dataset`` only the
    configs are walked (the second item is None); with it, the built dataset is walked in step
    with its config (mmengine's ``_SlicedDataset`` is looked through; a wrapper whose built
    object lacks the attribute its config names is skipped).
    """
    config_only = dataset is _CONFIG_ONLY
    if not config_only and type(dataset).__name__ == "_SlicedDataset":
        yield from dataset_leaves(dataset_cfg, dataset._dataset)
        return
    for key in ("pipeline", "datasets", "dataset"):
        if key not in dataset_cfg or not (config_only or hasattr(dataset, key)):
            continue
        if key == "pipeline":
            yield dataset_cfg, None if config_only else dataset
        elif key == "datasets":
            built = [_CONFIG_ONLY] * len(dataset_cfg[key]) if config_only else dataset.datasets
            for sub_cfg, sub in zip(dataset_cfg[key], built):
                yield from dataset_leaves(sub_cfg, sub)
        else:
            yield from dataset_leaves(dataset_cfg[key], _CONFIG_ONLY if config_only else dataset.dataset)
        return


def leaf_dataset_cfg(dataset_cfg: Mapping) -> Mapping:
    """The first dataset config with a pipeline inside wrappers (``dataset_cfg`` itself when
    none has one): where ``type``, ``data_root`` and ``test_mode`` of the data live."""
    return next((leaf for leaf, _ in dataset_leaves(dataset_cfg)), dataset_cfg)


def dataset_pipelines(dataset_cfg: Mapping) -> list:
    """The pipeline configs of a dataset config, through wrappers."""
    return [leaf["pipeline"] for leaf, _ in dataset_leaves(dataset_cfg)]


def _rewrite_pipelines(dataset_cfg: Any, fn: Callable[[list], list]) -> int:
    """Replace every pipeline of a dataset config by ``fn(pipeline)``; returns how many."""
    leaves = [leaf for leaf, _ in dataset_leaves(dataset_cfg)]
    for leaf in leaves:
        leaf["pipeline"] = fn(leaf["pipeline"])
    return len(leaves)


# ----------------------------------------------------------------------------- steps


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


def _copy_steps(pipeline: Sequence[Mapping]) -> list:
    return [copy.deepcopy(dict(step)) if isinstance(step, Mapping) else step for step in pipeline]


def _refuse_corrupt_step(steps: Sequence, what: str) -> None:
    names = [step_type_name(s) if isinstance(s, Mapping) else None for s in steps]
    if CORRUPT_TYPE in names:
        raise ValueError(f"the test pipeline already has a Corrupt step (index "
                         f"{names.index(CORRUPT_TYPE)}); remove it from the config: the robustness "
                         f"runner {what}")


# ----------------------------------------------------------------------------- pipeline mode


def insert_corrupt_transform(pipeline: Sequence[Mapping], corrupt_cfg: Mapping | None) -> list:
    """A copy of ``pipeline`` with ``corrupt_cfg`` right after its image-loading step.

    ``corrupt_cfg`` is a transform config (``dict(type='Corrupt', corruption=..., severity=...,
    seed=..., backend=...)``); its ``type`` defaults to ``'Corrupt'``. ``None`` returns an
    unchanged copy (the clean cell). Refuses a pipeline that already corrupts images. A
    pipeline with a ``UseCorruptedFile`` step (``--corrupted-root``,
    :mod:`~robust_transfer.openmmlab.pregenerated`) gets the cell's corruption and severity in
    that step instead of a ``Corrupt`` step.
    """
    steps = _copy_steps(pipeline)
    if corrupt_cfg is None:
        return steps
    from .pregenerated import fill_pregenerated_step

    if fill_pregenerated_step(steps, corrupt_cfg):  # --corrupted-root: the cell's files instead
        return steps
    _refuse_corrupt_step(steps, "inserts its own")
    steps.insert(find_image_loading_step(steps) + 1, {"type": CORRUPT_TYPE, **dict(corrupt_cfg)})
    return steps


def corrupt_transform_cfg(cell: Cell, seed: int = 0, backend: str = "numpy") -> dict | None:
    """The ``Corrupt`` config of one grid cell (None for the clean cell)."""
    if cell.is_clean:
        return None
    return dict(type=CORRUPT_TYPE, corruption=cell.corruption, severity=cell.severity,
                seed=int(seed), backend=backend)


def check_test_pipeline(cfg: Any) -> None:
    """``ValueError`` (naming the problem) when the test dataset has no pipeline the Corrupt
    transform can go into: checked before any model is built."""
    pipelines = dataset_pipelines(cfg.test_dataloader.dataset)
    if not pipelines:
        raise ValueError("the test dataset config has no 'pipeline' (nor a wrapped dataset with one)")
    for pipeline in pipelines:
        insert_corrupt_transform(pipeline, dict(corruption="fog", severity=1))


def swap_dataset_pipeline(dataset: Any, dataset_cfg: Mapping, corrupt_cfg: Mapping | None) -> int:
    """Give a built dataset (and every dataset it wraps) the pipeline of its config with
    ``corrupt_cfg`` inserted. Returns the number of pipelines replaced; ``ValueError`` when
    there is none."""
    from mmengine.dataset import Compose

    swapped = 0
    for leaf_cfg, leaf in dataset_leaves(dataset_cfg, dataset):
        leaf.pipeline = Compose(insert_corrupt_transform(leaf_cfg["pipeline"], corrupt_cfg))
        swapped += 1
    if not swapped:
        raise ValueError(f"found no pipeline to corrupt in the test dataset "
                         f"{type(dataset).__name__} (config keys: {sorted(dataset_cfg)})")
    return swapped


# ----------------------------------------------------------------------------- batch mode


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
    steps = _copy_steps(pipeline)
    names = [step_type_name(s) for s in steps]
    _refuse_corrupt_step(steps, "adds its own corruption")
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


def enable_batch_corruption(cfg: Any, seed: int = 0) -> None:
    """Set a config up for batch mode (in place): the test pipeline(s) of
    :func:`batch_mode_pipeline` and the model's data preprocessor wrapped in
    ``CorruptDataPreprocessor`` (native inputs, the pipeline's resize, no corruption until the
    evaluator sets one). Training settings are not touched."""
    importlib.import_module(PREPROCESSOR_MODULE)
    resizes: list[dict] = []

    def rewrite(pipeline: list) -> list:
        steps, resize = batch_mode_pipeline(pipeline)
        resizes.append(resize)
        return steps

    if not _rewrite_pipelines(cfg.test_dataloader.dataset, rewrite):
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
