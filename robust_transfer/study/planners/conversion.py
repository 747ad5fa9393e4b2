"""The conversion of a backbone's ImageNet checkpoint into the files the OpenMMLab tasks load.

Published checkpoints: the converter the suite names per task (``convert: <task>: {tool,
output, args}``), writing where the paper configs look. Stand-ins: the layout's mmdet converter
with ``--arch resnet18`` once, whose output both frameworks load (mmseg's ResNet has
torchvision's keys, as mmdet's)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ...backbones.catalogue import mmdet_converter
from ..layout import from_repo, rel
from ..steps import PYTHON, Step
from ..suite import STANDIN_ARCH, SuiteError
from .base import BackboneSource, PlanContext


def conversion_steps(ctx: PlanContext, source: BackboneSource,
                     tasks: Sequence[str]) -> dict[str, tuple[Path, Step]]:
    """{task: (converted file, its conversion step)} for the converting ``tasks``."""
    backbone = source.backbone
    if not tasks:
        return {}
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
