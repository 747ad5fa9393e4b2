"""What every task planner gets (:class:`PlanContext`) and gives (:class:`ModelSteps`), and the
part of planning all tasks share: which files of its data set a task reads."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..layout import Layout
from ..options import Options
from ..steps import Step
from ..suite import Backbone, Suite

Need = tuple[str, Path]  # (what, path) a step reads


@dataclass
class PlanContext:
    """The state of one plan being built, shared by the task planners."""

    suite: Suite
    options: Options
    layout: Layout
    cells: list[tuple[str, int]]
    data: Mapping[str, Path | None]  # coco, ade20k, cifar10, cifar10c
    data_step: str | None = None  # id of the step writing the synthetic data
    shard: tuple[int, int] = (0, 1)  # --shard i/n
    evaluations: int = 0  # evaluations planned so far (round-robin of unshardable ones)
    converted_classification: dict[str, Path] = field(default_factory=dict)  # registered backbones

    @property
    def synthetic(self) -> bool:
        return self.suite.synthetic is not None


@dataclass
class BackboneSource:
    """A backbone's ImageNet checkpoint: the file, the steps that make it, how it is named."""

    backbone: Backbone
    path: Path
    deps: list[str]  # its stand-in pre-training, if any
    need: Need


@dataclass
class ModelSteps:
    """The steps of one (task, backbone, mode): training, evaluation (maybe sharded), merges."""

    steps: list[Step] = field(default_factory=list)
    evaluation: str | None = None  # the step whose end means the results file is complete
    result: Path | None = None  # None: not evaluated by this plan (another --shard's)


@dataclass
class EvaluationSteps:
    """A model's evaluation: its parts (one, or one per shard), merges of earlier shard files to
    run first (``before``) and the merge of the parts' shard files (``after``)."""

    parts: list[Step]
    before: list[Step] = field(default_factory=list)
    after: Step | None = None


class TaskPlanner:
    """Plans one task's training and evaluation; subclasses fill in the class attributes."""

    task: str = ""
    data_key: str = ""  # the entry of the suite's data paths
    data_title: str = ""
    data_files: Mapping[str, tuple[str, ...]] = {}  # "train"/"evaluate" -> files under data_key
    converts_backbone: bool = False  # trains from a converted backbone (convert steps)
    distributed_training: bool = False  # its training uses --gpus-per-job GPUs (torchrun)
    preload: tuple[str, ...] = ()  # modules the fork executor imports once for its steps

    def data_needs(self, ctx: PlanContext) -> dict[str, list[Need]]:
        """{"train": [...], "evaluate": [...]}: the (what, path) of the data set a task's
        training and evaluation read. Synthetic data: the folders the plan's data step writes."""
        root = ctx.data[self.data_key]
        if ctx.synthetic:
            need = [(f"synthetic {self.data_title} (the prepare:data step)", root)]
            return {"train": need, "evaluate": need}
        what = f"{self.data_title} (suite data: {self.data_key})"
        return {kind: files_under(what, root, files) for kind, files in self.data_files.items()}

    def model_steps(self, ctx: PlanContext, source: BackboneSource, mode: str,
                    converted: tuple[Path, Step] | None) -> ModelSteps:
        """The steps that train (or, with ``--checkpoint-dir``, take) and evaluate the backbone
        of ``source`` in ``mode``; ``converted``: its converted file and conversion step."""
        name, needs, out = source.backbone.name, self.data_needs(ctx), ModelSteps()
        what = f"trained {self.task} model of '{name}' / {mode}"
        train_id = None
        if ctx.options.checkpoint_dir:  # absent files are listed by the preflight
            checkpoint = trained_checkpoint(ctx.options.checkpoint_dir, source.backbone,
                                            self.task, mode)
            model_need = (f"{what} (--checkpoint-dir)", checkpoint)
        else:
            train, checkpoint = self.train_step(ctx, source, mode, converted)
            train.deps += [ctx.data_step] if ctx.data_step else []
            train.needs += needs["train"]
            out.steps.append(train)
            train_id, model_need = train.id, (f"{what} (its train step)", train.makes[0])
        ctx.evaluations += 1
        result = ctx.layout.result(self.task, name, mode)
        evaluation = self.evaluation_steps(ctx, source, mode, checkpoint, result)
        if evaluation is None:
            return out
        out.steps += evaluation.before
        for part in evaluation.parts:
            part.deps = [d for d in [*part.deps, train_id or ctx.data_step] if d]
            part.needs += [model_need, *needs["evaluate"]]
        out.steps += evaluation.parts
        if evaluation.after is not None:
            out.steps.append(evaluation.after)
        out.evaluation = (evaluation.after or evaluation.parts[0]).id
        out.result = result
        return out

    def train_step(self, ctx: PlanContext, source: BackboneSource, mode: str,
                   converted: tuple[Path, Step] | None) -> tuple[Step, Path | None]:
        """The training (its deps and needs on the backbone set; the data's are added) and the
        checkpoint its evaluation is given (None: the tool finds it)."""
        raise NotImplementedError

    def evaluation_steps(self, ctx: PlanContext, source: BackboneSource, mode: str,
                         checkpoint: Path | None, result: Path) -> EvaluationSteps | None:
        """The evaluation writing ``result`` (None: another ``--shard``'s)."""
        raise NotImplementedError


def trained_checkpoint(directory: str, backbone: Backbone, task: str, mode: str) -> Path:
    """A trained model in ``--checkpoint-dir``: its released file name, else
    ``<task>/<backbone>_<mode>.pth``."""
    from ..layout import from_repo

    released = backbone.released.get(task, {}).get(mode)
    root = from_repo(directory)
    if released and (root / released).is_file():
        return root / released
    return root / task / f"{backbone.name}_{mode}.pth"


def files_under(what: str, root: Path, files) -> list[Need]:
    """The needs of ``files`` under ``root``; an absent data set is one entry (its folder)."""
    return [(what, root / f) for f in files] if root.is_dir() else [(what, root)]
