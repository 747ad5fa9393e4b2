"""The planner of the OpenMMLab tasks (detection with mmdet, segmentation with mmseg): one class,
parametrised by the task's fork, data set and launcher quirks.

Training: the fork's ``tools/train.py`` (or ``dist_train.sh`` / ``slurm_train.sh``) from the
converted backbone, resumed when interrupted; under a launcher with another GPU count than the
recipe's, detection scales the learning rate (``--auto-scale-lr``) and segmentation keeps the
recipe's total batch. Evaluation: ``tools/test_robustness.py`` over the grid, optionally split into
``--eval-shards`` one-GPU jobs merged afterwards; shard files left by an earlier ``--shard`` run
are merged before the grid is completed.
"""
from __future__ import annotations

from pathlib import Path

from ...grid import Cell, find_shard_paths, parse_shard, select_shard, shard_path
from ..launchers import OpenMMLabTools, launch_test, launch_train
from ..fingerprint import without_resume
from ..layout import from_repo, rel
from ..steps import PYTHON, Step, results_complete
from ..suite import Backbone, SuiteError, TaskSettings
from .base import BackboneSource, EvaluationSteps, PlanContext, TaskPlanner

MERGE = [PYTHON, "-m", "robust_transfer.cli", "merge"]


class OpenMMLabPlanner(TaskPlanner):
    """Plans a detection or segmentation model: train with the fork's tool, then its grid."""

    converts_backbone = True
    distributed_training = True

    def __init__(self, task: str, *, tools: OpenMMLabTools, data_key: str, data_title: str,
                 data_files, synthetic_env: str, framework: str, scales_lr: bool,
                 channel_keys: dict[str, int | None]):
        self.task, self.tools = task, tools
        # config keys fed by the backbone's stages: {key: stage index, None = all four}
        self.channel_keys = channel_keys
        self.data_key, self.data_title, self.data_files = data_key, data_title, data_files
        self.synthetic_env = synthetic_env  # what the smoke configs read for the data root
        self.scales_lr = scales_lr  # --auto-scale-lr (else: keep the recipe's total batch)
        self.preload = ("torch", "torchvision", f"robust_transfer.openmmlab.{framework}",
                        "robust_transfer.openmmlab.robustness",
                        *(f"{framework}.{m}" for m in ("datasets", "engine", "evaluation",
                                                       "models", "visualization")))

    # -- what every command of the task gets
    def env(self, ctx: PlanContext) -> dict[str, str]:
        """The environment of the task's commands (the synthetic data root)."""
        return {self.synthetic_env: rel(ctx.data[self.data_key])} if ctx.synthetic else {}

    def data_cfg_options(self, ctx: PlanContext) -> list[str]:
        """``--cfg-options`` that point the configs' data sets at the suite's ``data:`` entry (the
        configs inherit the packages' defaults, data/coco/ and data/ade/ADEChallengeData2016)."""
        if ctx.synthetic:
            return []
        root = rel(ctx.data[self.data_key])
        if self.task != "detection":
            return [f"{split}_dataloader.dataset.data_root={root}" for split in ("train", "val", "test")]
        root = root.rstrip("/") + "/"  # mmdet joins data_root + prefix as strings
        annotations = root + "annotations/instances_val2017.json"
        return [f"{split}_dataloader.dataset.data_root={root}" for split in ("train", "val", "test")] + \
            [f"val_evaluator.ann_file={annotations}", f"test_evaluator.ann_file={annotations}"]

    def backbone_cfg_options(self, backbone: Backbone) -> list[str]:
        """For a registered ResNet: the task config's ``model.backbone`` replaced by the one its
        converted file fits (``meta.backbone_cfg``, made by the same function), and the neck /
        head input channels of its stages (ResNet-18/34: 64..512, deeper: 256..2048). Other
        backbones: nothing (the config fits them)."""
        from ...backbones.checks import CheckpointError
        from ...backbones.resnet_family import RESNET_ARCHS, openmmlab_backbone_cfg

        if not backbone.registered or backbone.arch not in RESNET_ARCHS:
            return []
        spec = RESNET_ARCHS[backbone.arch]
        try:
            cfg = openmmlab_backbone_cfg(spec)
        except CheckpointError as error:
            raise SuiteError(f"backbone {backbone.name!r}: {error}") from None
        widths = [64 * 2 ** i * (1 if spec.block == "basic" else 4) for i in range(4)]
        options = [f"model.backbone.{key}={value}" for key, value in cfg.items()]
        for key, stage in self.channel_keys.items():
            value = widths if stage is None else widths[stage]
            options.append(f"{key}={value}".replace(" ", ""))
        return options

    # -- training
    def train_step(self, ctx, source: BackboneSource, mode: str, converted):
        name, options = source.backbone.name, ctx.options
        settings = ctx.suite.settings(self.task)
        config = ctx.suite.config(name, self.task, mode)
        output, convert = converted
        train_dir = ctx.layout.train_dir(self.task, name, mode)
        final = train_dir / settings.final_checkpoint
        cfg = [*self.backbone_cfg_options(source.backbone),
               f"model.backbone.init_cfg.checkpoint={rel(output)}", f"transfer.backbone={name}",
               *self.data_cfg_options(ctx), *map(str, settings.cfg_options)]
        args = ["--resume"] if (train_dir / "last_checkpoint").is_file() and not final.is_file() else []
        self._scale_recipe(settings, options.job_gpus(), options.launcher, args, cfg)
        launch = launch_train(self.tools, config, train_dir, args, ["--cfg-options", *cfg],
                              options, f"train-{self.task}-{name}-{mode}")
        step = Step(f"train:{self.task}/{name}/{mode}", "train",
                    f"train {self.task} / {name} / {mode}", launch.argv,
                    env={**self.env(ctx), **launch.env}, done=final.is_file,
                    refs=[config, *launch.refs], task=self.task, backbone=name, mode=mode,
                    deps=[convert.id], makes=[final],
                    inputs={"config": config, "cfg_options": cfg, "args": without_resume(args)},
                    input_files={"config": from_repo(config)},
                    needs=[(f"converted backbone of '{name}' for {self.task} (its convert step)",
                            output)])
        return step, final

    def _scale_recipe(self, settings: TaskSettings, gpus: int, launcher: str, args: list[str],
                      cfg: list[str]) -> None:
        """Adapt the recipe to a GPU count other than its own (under a launcher)."""
        recipe_gpus = int(settings.recipe_gpus or gpus)
        if launcher == "none" or gpus == recipe_gpus:
            return
        if self.scales_lr:
            args.append("--auto-scale-lr")  # linear lr scaling to the actual total batch
        elif settings.recipe_batch:
            total = int(settings.recipe_batch)
            if total % gpus:
                raise SuiteError(f"{self.task}: the recipe's batch of {total} images cannot be "
                                 f"split over {gpus} GPUs (--gpus / --gpus-per-job)")
            cfg.append(f"train_dataloader.batch_size={total // gpus}")

    # -- evaluation
    def evaluation_steps(self, ctx, source: BackboneSource, mode: str, checkpoint: Path | None,
                         result: Path) -> EvaluationSteps:
        count = ctx.shard[1]
        split = ctx.options.eval_shards if count == 1 else 1
        parts = [self._evaluate(ctx, source.backbone.name, mode, checkpoint, result,
                                (j, split) if split > 1 else None) for j in range(split)]
        steps = EvaluationSteps(parts)
        earlier = self._merge_earlier_shards(ctx, source.backbone.name, mode, result) \
            if count == 1 else None
        if earlier is not None:
            steps.before.append(earlier)
            for part in parts:
                part.deps.append(earlier.id)
        if len(parts) > 1:  # the node's shards of one grid, merged into its results
            steps.after = self._merge_parts(ctx, source.backbone.name, mode, result, parts)
        return steps

    def _evaluate(self, ctx, name: str, mode: str, checkpoint: Path, result: Path,
                  part: tuple[int, int] | None) -> Step:
        """The robustness tool over the grid (or shard ``part`` = (i, n) of it, --eval-shards):
        one process on one GPU (a Slurm job of one GPU under --launcher slurm)."""
        evaluation, options = ctx.suite.evaluation, ctx.options
        shard = f"{part[0]}/{part[1]}" if part else options.shard
        train_dir = ctx.layout.train_dir(self.task, name, mode)
        args = ["--out", rel(result.with_suffix(".pkl")),
                "--corruptions", *evaluation.corruption_args(),
                "--severities", "0", *map(str, evaluation.severities),
                "--seed", str(evaluation.seed), "--backend", str(evaluation.backend),
                *(["--corrupt-on", str(evaluation.corrupt_on)] if evaluation.corrupt_on else []),
                "--resume", "--final-prints", "P", "mPC", "rPC",
                "--final-prints-aggregate", "all" if evaluation.aggregate == "all" else "benchmark",
                "--work-dir", rel(train_dir / "robustness")]
        if shard:
            args += ["--shard", shard]
        args += ["--cfg-options", f"transfer.backbone={name}",
                 *self.backbone_cfg_options(ctx.suite.backbones[name]), *self.data_cfg_options(ctx),
                 *map(str, ctx.suite.settings(self.task).eval_cfg_options)]
        config = ctx.suite.config(name, self.task, mode)
        launch = launch_test(self.tools, config, checkpoint, args, options,
                             f"test-{self.task}-{name}-{mode}")
        cells = ctx.cells
        if shard:
            i, n = parse_shard(shard)
            mine = [(c.corruption, c.severity)
                    for c in select_shard([Cell(c, s) for c, s in cells], i, n)]
            done = lambda: results_complete(result, cells) or \
                results_complete(shard_path(result, i, n), mine)  # noqa: E731
        else:
            done = lambda: results_complete(result, cells)  # noqa: E731
        inputs = {"config": config, "args": without_resume(args)}
        files = {"config": from_repo(config)}
        if ctx.options.checkpoint_dir:  # a given model: its bytes (a trained one: its train step)
            files["trained model"] = checkpoint
        return Step(f"evaluate:{self.task}/{name}/{mode}" + (f"#{part[0]}" if part else ""),
                    "evaluate", f"robustness of {self.task} / {name} / {mode}" +
                    (f" (shard {shard})" if part else ""), launch.argv,
                    env={**self.env(ctx), **launch.env}, done=done, refs=launch.refs,
                    task=self.task, backbone=name, mode=mode, makes=[result], inputs=inputs,
                    input_files=files)

    def _merge_earlier_shards(self, ctx, name: str, mode: str, result: Path) -> Step | None:
        """Merge the shard files an earlier ``--shard`` run left, unless the grid is complete."""
        shards = find_shard_paths(result)
        if not shards or results_complete(result, ctx.cells):
            return None
        inputs = [rel(s) for s in shards] + ([rel(result)] if result.is_file() else [])
        return Step(f"merge:{self.task}/{name}/{mode}", "merge", f"merge {len(shards)} shard "
                    f"files of {self.task} / {name} / {mode}", MERGE + [*inputs, "-o", rel(result)],
                    done=lambda: results_complete(result, ctx.cells), task=self.task,
                    backbone=name, mode=mode, makes=[result])

    def _merge_parts(self, ctx, name: str, mode: str, result: Path, parts: list[Step]) -> Step:
        """Merge the shard files ``parts`` wrote (``--eval-shards``) into the grid's results
        file; its inputs are found when it runs (a finished shard may have been merged before)."""
        files = [shard_path(result, i, len(parts)) for i in range(len(parts))]

        def resolve(step: Step) -> list[str]:
            inputs = [rel(f) for f in files if f.is_file()] + \
                ([rel(result)] if result.is_file() else [])
            return MERGE + inputs + ["-o", rel(result)]

        return Step(f"merge:{self.task}/{name}/{mode}#shards", "merge",
                    f"merge the {len(parts)} shards of {self.task} / {name} / {mode}",
                    MERGE + [rel(f) for f in files] + ["-o", rel(result)],
                    deps=[p.id for p in parts], resolve=resolve,
                    done=lambda: results_complete(result, ctx.cells), task=self.task,
                    backbone=name, mode=mode, makes=[result])


#: What each task reads of its real data set, for training (which also validates) and for the
#: robustness grid.
COCO_FILES = {"train": ("annotations/instances_train2017.json", "train2017",
                        "annotations/instances_val2017.json", "val2017"),
              "evaluate": ("annotations/instances_val2017.json", "val2017")}
ADE20K_FILES = {"train": ("images/training", "annotations/training", "images/validation",
                          "annotations/validation"),
                "evaluate": ("images/validation", "annotations/validation")}

DETECTION = OpenMMLabPlanner(
    "detection", tools=OpenMMLabTools.of("mmdetection", slurm_train_takes_work_dir=True),
    data_key="coco", data_title="COCO 2017", data_files=COCO_FILES,
    synthetic_env="SYNTHETIC_COCO_ROOT", framework="mmdet", scales_lr=True,
    channel_keys={"model.neck.in_channels": None})
SEGMENTATION = OpenMMLabPlanner(
    "segmentation", tools=OpenMMLabTools.of("mmsegmentation", slurm_train_takes_work_dir=False),
    data_key="ade20k", data_title="ADE20K", data_files=ADE20K_FILES,
    synthetic_env="SYNTHETIC_ADE20K_ROOT", framework="mmseg", scales_lr=False,
    channel_keys={"model.decode_head.in_channels": None, "model.auxiliary_head.in_channels": 2})
