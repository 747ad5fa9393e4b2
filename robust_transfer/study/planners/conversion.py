"""The conversion of a backbone's ImageNet checkpoint into the files the OpenMMLab tasks load.

Published checkpoints: the converter the suite names per task (``convert: <task>: {tool,
output, args}``), writing where the paper configs look. Stand-ins: the layout's mmdet converter
with ``--arch resnet18`` once, whose output both frameworks load (mmseg's ResNet has
torchvision's keys, as mmdet's)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ...backbones.catalogue import mmdet_converter
from ..layout import REPO, from_repo, rel
from ..steps import PYTHON, Step
from ..suite import STANDIN_ARCH, SuiteError
from .base import BackboneSource, PlanContext


def conversion_steps(ctx: PlanContext, source: BackboneSource,
                     tasks: Sequence[str]) -> dict[str, tuple[Path, Step]]:
    """{task: (converted file, its conversion step)} for the converting ``tasks``."""
    backbone = source.backbone
    if not tasks:
        return {}
    if backbone.registered:
        return registered_conversion(ctx, source, tasks)
    if ctx.synthetic:
        output = ctx.layout.converted(backbone.name, STANDIN_ARCH)
        step = _convert(source, tasks, mmdet_converter(backbone.format), output,
                        ["--arch", STANDIN_ARCH])
        return {task: (output, step) for task in tasks}
    out = {}
    for task in tasks:
        convert = backbone.convert.get(task)
        if not convert or "tool" not in convert or "output" not in convert:
            raise SuiteError(f"backbone {backbone.name!r}: no {task} converter (convert: {task}: "
                             "{tool: ..., output: ...})")
        output = from_repo(convert["output"])
        out[task] = (output, _convert(source, [task], convert["tool"], output,
                                      [str(a) for a in convert.get("args", [])]))
    return out


#: ``backbone convert --to`` target of each task.
CONVERT_TARGETS = {"detection": "mmdet", "segmentation": "mmseg", "classification": "classification"}


def registered_conversion(ctx: PlanContext, source: BackboneSource,
                          tasks: Sequence[str]) -> dict[str, tuple[Path, Step]]:
    """One ``robust-transfer backbone convert ID`` for a backbone of the suite's backbones_file:
    the files of every task, where the catalogue says, under the repository root (real runs)
    or the work dir's ``converted/`` (synthetic suites)."""
    from ...backbones.catalogue import get_backbone
    from ...cli_backbone import CLASSIFICATION_CHECKPOINT_DIR

    backbone, suite = source.backbone, ctx.suite
    entry = get_backbone(backbone.name)  # registered when the suite was loaded
    root = ctx.layout.root / "converted" if ctx.synthetic else REPO
    outputs = {"detection": root / entry.mmdet_path, "segmentation": root / entry.mmseg_path,
               "classification": root / CLASSIFICATION_CHECKPOINT_DIR / f"{entry.arch}_{entry.id}_torchvision.pth"}
    targets = [CONVERT_TARGETS[t] for t in tasks]
    argv = [PYTHON, "-m", "robust_transfer.cli", "backbone", "convert", backbone.name,
            "--backbones", rel(suite.backbones_file), "--root", rel(root), "--to", *targets]
    made = [outputs[t] for t in tasks]
    step = Step(f"convert:{tasks[0]}/{backbone.name}", "convert",
                f"convert '{backbone.name}' ({entry.arch}) for {'/'.join(tasks)}", argv,
                done=lambda: all(p.is_file() for p in made), backbone=backbone.name,
                task=tasks[0] if len(tasks) == 1 else None, deps=list(source.deps),
                needs=[source.need], makes=made,
                inputs={"targets": targets, "outputs": [rel(p) for p in made]},
                input_files={"ImageNet checkpoint": source.path})
    return {task: (outputs[task], step) for task in tasks}


def _convert(source: BackboneSource, tasks: Sequence[str], tool: str, output: Path,
             extra: list[str]) -> Step:
    """One conversion for ``tasks`` (named after the first; its task when it serves one)."""
    name = source.backbone.name
    return Step(f"convert:{tasks[0]}/{name}", "convert", f"convert '{name}' for {'/'.join(tasks)}",
                [PYTHON, tool, *extra, rel(source.path), rel(output)], done=output.is_file,
                refs=[tool], task=tasks[0] if len(tasks) == 1 else None, backbone=name,
                deps=list(source.deps),
                needs=[source.need], makes=[output],
                inputs={"tool": tool, "args": extra, "output": rel(output)},
                input_files={"ImageNet checkpoint": source.path})
