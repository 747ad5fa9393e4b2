"""Configs and mmengine Runners for train, test and robustness runs of both frameworks.

One :func:`load_config` (as mmdet's and mmseg's own tools read a config) and one
:func:`build_runner` (the task's registry scope for ``runner_type``, the CPU-distributed shim);
the config tweaks the tools' flags make (:func:`enable_amp`, :func:`enable_test_amp`,
:func:`use_tta`, :func:`drop_pretrained_weights`) live here too.

Distributed runs (``--launcher pytorch`` under torchrun, ``slurm`` under srun): on a machine
without CUDA the process group is initialised with gloo here, since mmengine's initialiser calls
``torch.cuda.set_device`` (see :func:`prepare_cpu_distributed`).
"""
from __future__ import annotations

import argparse
import importlib
import os
from pathlib import Path
from typing import Any, Mapping

from .adapter import TaskAdapter

LAUNCHERS = ("none", "pytorch", "slurm", "mpi")


def set_local_rank(local_rank: int) -> None:
    """``LOCAL_RANK`` from ``--local-rank`` when the launcher did not set it (mmengine reads it)."""
    os.environ.setdefault("LOCAL_RANK", str(local_rank))


def load_config(config: str | os.PathLike, adapter: TaskAdapter | None = None, *,
                cfg_options: Mapping | None = None, work_dir: str | None = None,
                launcher: str = "none") -> Any:
    """Read a config as mmdet's and mmseg's tools do, for train, test and robustness runs.

    The adapter's plugin module is imported first (so ``Corrupt`` and the shims are in place even
    for configs without ``custom_imports``); then ``cfg_options`` (``--cfg-options``) are merged,
    ``launcher`` is set, and the work dir is ``work_dir`` (``--work-dir``), else the config's,
    else ``work_dirs/<config stem>``, made absolute.
    """
    from mmengine.config import Config

    if adapter is not None and adapter.plugin_module:
        importlib.import_module(adapter.plugin_module)
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


def build_runner(cfg: Any, adapter: TaskAdapter | None = None) -> Any:
    """mmengine's ``Runner`` for ``cfg``, after the CPU-distributed shim. A config's
    ``runner_type`` is built from the registry of the adapter's ``registry_scope`` (mmdet's and
    mmseg's fall back to mmengine's), mmengine's without an adapter."""
    prepare_cpu_distributed(cfg, cfg.get("launcher", "none"))
    if "runner_type" in cfg:
        scope = adapter.registry_scope if adapter is not None else "mmengine"
        return importlib.import_module(f"{scope}.registry").RUNNERS.build(cfg)
    from mmengine.runner import Runner

    return Runner.from_cfg(cfg)


def enable_amp(cfg: Any) -> None:
    """``--amp``: mixed precision through mmengine's ``AmpOptimWrapper``.

    A plain ``OptimWrapper`` becomes an ``AmpOptimWrapper`` with dynamic loss scaling unless the
    config sets ``loss_scale``; a config already on ``AmpOptimWrapper`` is left as it is; any
    other wrapper is a ``ValueError`` (we would not know what to change)."""
    wrapper = cfg.optim_wrapper.get("type", "OptimWrapper")
    if wrapper == "AmpOptimWrapper":
        return
    if wrapper != "OptimWrapper":
        raise ValueError(f"--amp works with optim_wrapper type OptimWrapper, not {wrapper}")
    cfg.optim_wrapper.type = "AmpOptimWrapper"
    cfg.optim_wrapper.setdefault("loss_scale", "dynamic")


def enable_test_amp(cfg: Any) -> None:
    """``--amp`` of the test and robustness tools: the same mixed precision as :func:`enable_amp`
    trains under (mmengine's ``autocast``: float16 on CUDA, bfloat16 on the CPU), here around
    each test step through the test loop's ``fp16`` flag. ``ValueError`` for a test loop other
    than mmengine's ``TestLoop``/``ValLoop`` (we would not know it takes the flag)."""
    loop = cfg.get("test_cfg") or {}
    loop_type = loop.get("type", "TestLoop")
    if loop_type not in ("TestLoop", "ValLoop"):
        raise ValueError(f"--amp works with test_cfg type TestLoop, not {loop_type}")
    cfg.test_cfg = dict(loop, type=loop_type, fp16=True)


def use_tta(cfg: Any) -> None:
    """``--tta``: the config's test-time-augmentation pipeline and model, as mmseg's test.py."""
    if "tta_pipeline" not in cfg or "tta_model" not in cfg:
        raise ValueError("--tta needs tta_pipeline and tta_model in the config")
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


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
    initialisation) and let DDP wrap the CPU model without device ids. Idempotent.
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


def add_runner_flags(parser: argparse.ArgumentParser,
                     work_dir_help: str = "folder for logs and checkpoints") -> None:
    """The flags every tool shares: ``--work-dir``, ``--cfg-options``, ``--launcher`` and the
    launcher's ``--local-rank``."""
    from mmengine.config import DictAction

    parser.add_argument("--work-dir", help=work_dir_help)
    parser.add_argument("--cfg-options", nargs="+", action=DictAction,
                        help="override config settings, xxx=yyy (see mmengine's DictAction)")
    parser.add_argument("--launcher", choices=LAUNCHERS, default="none", help="job launcher")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0, help=argparse.SUPPRESS)


def load_tool_config(args: argparse.Namespace, adapter: TaskAdapter) -> Any:
    """:func:`load_config` from a tool's parsed flags (``config``, ``--cfg-options``,
    ``--work-dir``, ``--launcher``), with ``LOCAL_RANK`` set from ``--local-rank``."""
    set_local_rank(args.local_rank)
    return load_config(args.config, adapter, cfg_options=args.cfg_options, work_dir=args.work_dir,
                       launcher=args.launcher)
