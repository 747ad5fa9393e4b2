"""The planner of CIFAR-10 classification: robust-models-transfer's ``src/main.py`` trains
(fixed-feature: ``--freeze-level 4``; full-network: ``-1``; ``+prime``: ``--prime``) and
evaluates (``--eval-only 1``) with the same recipe, so the results' identity matches. main.py has
no ``--shard``: under ``--shard i/n`` whole evaluations go round-robin."""
from __future__ import annotations

from pathlib import Path

from ..fingerprint import without_resume
from ..launchers import slurm_wrap
from ..layout import rel
from ..steps import PYTHON, Step, results_complete
from .base import BackboneSource, EvaluationSteps, PlanContext, TaskPlanner, files_under

MAIN = "robust-models-transfer/src/main.py"
CIFAR10 = tuple(f"cifar-10-batches-py/{f}" for f in (
    "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
    "batches.meta"))


class ClassificationPlanner(TaskPlanner):
    """Plans a CIFAR-10 model: main.py trains it, then ``main.py --eval-only 1`` its grid."""

    task = "classification"
    data_key, data_title = "cifar10", "CIFAR-10"
    data_files = {"train": CIFAR10,
                  "evaluate": ("cifar-10-batches-py/test_batch", "cifar-10-batches-py/batches.meta")}
    preload = ("torch", "torchvision", "robust_transfer.classification")

    def data_needs(self, ctx: PlanContext):
        needs = super().data_needs(ctx)
        if not ctx.synthetic and ctx.data.get("cifar10c"):
            from ...corruptions import resolve_corruptions

            names = resolve_corruptions(ctx.suite.evaluation.corruptions)
            needs["evaluate"] += files_under("CIFAR-10-C (suite data: cifar10c)",
                                             ctx.data["cifar10c"],
                                             [f"{c}.npy" for c in ["labels", *names]])
        return needs

    def _train_dir(self, ctx: PlanContext, name: str, mode: str) -> Path:
        # main.py names its results' model after the experiment folder: one per model
        return ctx.layout.train_dir(self.task, name, mode, flat=True)

    def _recipe(self, ctx: PlanContext, source: BackboneSource, mode: str) -> list[str]:
        """main.py's command line shared by training and evaluation."""
        backbone, settings = source.backbone, ctx.suite.settings(self.task)
        train_dir = self._train_dir(ctx, backbone.name, mode)
        recipe = dict(settings.args)
        arch = recipe.pop("arch", backbone.arch)
        model_path, model_format = source.path, backbone.format
        if backbone.registered:  # its own architecture, from the file `backbone convert` wrote
            arch = backbone.arch
            if backbone.name in ctx.converted_classification:
                model_path = ctx.converted_classification[backbone.name]
                model_format = "torchvision"
        argv = [PYTHON, MAIN, "--arch", arch,
                "--dataset", settings.dataset, "--data", rel(ctx.data["cifar10"]),
                "--out-dir", rel(train_dir.parent), "--exp-name", train_dir.name,
                "--model-path", rel(model_path), "--model-format", model_format,
                "--backbone-name", backbone.name,
                "--freeze-level", "4" if mode == "fixed-feature" else "-1"]
        for key, value in recipe.items():
            argv += [f"--{key}", str(value)]
        if mode == "full-network+prime":
            argv.append("--prime")
        return argv

    def train_step(self, ctx, source: BackboneSource, mode: str, converted):
        name = source.backbone.name
        if converted is not None:  # a registered backbone: main.py reads the converted file
            ctx.converted_classification[name] = converted[0]
        train_dir = self._train_dir(ctx, name, mode)
        argv = self._recipe(ctx, source, mode)
        if (train_dir / "checkpoint.pt.latest").is_file():
            argv.append("--resume")
        epochs = int(ctx.suite.settings(self.task).args.get("epochs", 150))
        step = Step(f"train:{self.task}/{name}/{mode}", "train",
                    f"train {self.task} / {name} / {mode}",
                    slurm_wrap(argv, ctx.options, f"train-{self.task}-{name}-{mode}"),
                    done=lambda: _training_done(train_dir, epochs), refs=[MAIN], task=self.task,
                    backbone=name, mode=mode, needs=[source.need],
                    deps=list(source.deps) + ([converted[1].id] if converted else []),
                    makes=[train_dir / "checkpoint.pt.latest"],
                    inputs={"recipe": without_resume(argv)},
                    input_files={"ImageNet checkpoint": source.path})
        return step, None  # main.py --eval-only finds the checkpoint in its experiment folder

    def evaluation_steps(self, ctx, source: BackboneSource, mode: str, checkpoint: Path | None,
                         result: Path) -> EvaluationSteps | None:
        index, count = ctx.shard
        if count > 1 and (ctx.evaluations - 1) % count != index:
            return None  # main.py has no --shard: whole evaluations go round-robin
        evaluation, name = ctx.suite.evaluation, source.backbone.name
        corruptions = evaluation.corruptions
        argv = self._recipe(ctx, source, mode) + [
            "--eval-only", "1", "--eval-corruptions",
            corruptions if isinstance(corruptions, str) else ",".join(corruptions),
            "--severities", *map(str, evaluation.severities), "--results", rel(result), "--resume"]
        if ctx.data.get("cifar10c"):
            argv += ["--cifar10c-dir", rel(ctx.data["cifar10c"])]
        else:
            # main.py has no auto: the reference backend, what auto picks on a CPU
            backend = "numpy" if evaluation.backend == "auto" else evaluation.backend
            argv += ["--corruption-backend", backend,
                     "--corruption-seed", str(evaluation.seed)]
        if checkpoint is not None:
            argv += ["--eval-checkpoint", rel(checkpoint)]
        eval_images = ctx.suite.settings(self.task).eval_images
        if eval_images:
            argv += ["--eval-subset", str(eval_images)]
        step = Step(f"evaluate:{self.task}/{name}/{mode}", "evaluate",
                    f"robustness of {self.task} / {name} / {mode}",
                    slurm_wrap(argv, ctx.options, f"test-{self.task}-{name}-{mode}"),
                    done=lambda: results_complete(result, ctx.cells), refs=[MAIN],
                    task=self.task, backbone=name, mode=mode, makes=[result],
                    inputs={"recipe": without_resume(argv)},
                    input_files={"trained model": checkpoint} if checkpoint is not None else {})
        return EvaluationSteps([step])


def _training_done(exp_dir: Path, epochs: int) -> bool:
    """main.py has run ``epochs`` epochs in ``exp_dir`` (its log and last checkpoint)."""
    import json

    try:
        rows = json.loads((exp_dir / "log.json").read_text())
    except (OSError, ValueError):
        return False
    return (exp_dir / "checkpoint.pt.latest").is_file() and \
        max((int(r.get("epoch", 0)) for r in rows), default=0) >= epochs


CLASSIFICATION = ClassificationPlanner()
