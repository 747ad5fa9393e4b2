"""A suite and its options become a :class:`~.steps.Plan`: the shared steps (synthetic data,
stand-in backbones, conversions, the report) here, each task's training and evaluation from
its planner in :data:`~.planners.PLANNERS`.

The plan of a suite, per backbone x task x transfer mode::

    prepare   (--smoke and the demo only) synthetic data sets, stand-in ImageNet backbones
    convert   published ImageNet checkpoint -> the file mmdet / mmseg load (their converters)
    train     the task's own training tool, or a trained checkpoint from --checkpoint-dir
    evaluate  the task's robustness tool over the suite's corruptions x severities
    merge     shard files of one grid into its results file
    report    robust-transfer report over all results of the suite
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from .layout import Layout, from_repo, rel
from .options import Options
from .planners import PLANNERS, BackboneSource, PlanContext
from .planners.conversion import conversion_steps
from .steps import PYTHON, STEP_KINDS, Plan, Step
from .suite import Suite, SuiteError


def build_plan(suite: Suite, options: Options) -> Plan:
    """Every command that reproduces ``suite`` with ``options``, in dependency order."""
    from ..grid import parse_shard

    options.check()
    suite = with_severities(suite, options.severities)
    shard = parse_shard(options.shard)
    steps_wanted = _select("steps", options.steps, STEP_KINDS)
    tasks = _select("tasks", options.tasks, suite.tasks)
    backbones = _select("backbones", options.backbones, list(suite.backbones))
    modes = _select("modes", options.modes, suite.modes)
    layout = Layout.at(options.work_dir or suite.work_dir, options.report_dir)
    ctx = PlanContext(suite, options, layout, suite.evaluation.cells(),
                      _data_paths(suite, layout), shard=shard)
    plan = Plan(suite, [], layout.root, layout.report(suite.name))
    standins = _prepare_steps(ctx, backbones, plan.steps)
    results, evaluations = [], []
    for name in backbones:
        source = _source(ctx, name, standins.get(name))
        # a registered backbone is converted for every task, classification included
        converting = [t for t in tasks if PLANNERS[t].converts_backbone or source.backbone.registered]
        converted = {} if options.checkpoint_dir else conversion_steps(ctx, source, converting)
        plan.steps += list({id(step): step for _, step in converted.values()}.values())
        for task in tasks:
            for mode in modes:
                model = PLANNERS[task].model_steps(ctx, source, mode, converted.get(task))
                plan.steps += model.steps
                if model.result is not None:
                    results.append(model.result)
                    evaluations.append(model.evaluation)
    if shard[1] == 1:
        plan.steps += _report_steps(ctx, plan, results, standins, evaluations)
    else:
        plan.notes.append(f"shard {options.shard}: no report; when every shard is done, run the "
                          "suite again without --shard (merges the shard files, then reports)")
    _fingerprint(plan, layout)
    plan.steps = [s for s in plan.steps if s.kind in steps_wanted]
    _assign_gpus(plan.steps, options)
    kept = {s.id for s in plan.steps}
    for step in plan.steps:
        step.deps = [d for d in step.deps if d in kept]
    missing = plan.missing_refs()
    if missing:
        raise SuiteError("the plan names files that do not exist: " + ", ".join(missing))
    return plan


def with_severities(suite: Suite, severities: Sequence[int] | None) -> Suite:
    """``suite`` evaluated at ``severities`` (``--severities``) instead of its own; the suites
    record the study's severity 1, ``--severities 1 2 3 4 5`` is the full benchmark."""
    if not severities:
        return suite
    evaluation = replace(suite.evaluation, severities=sorted({int(s) for s in severities}))
    return replace(suite, evaluation=evaluation)


def _fingerprint(plan: Plan, layout: Layout) -> None:
    """Give every step of the whole plan (before ``--steps`` leaves some out) its fingerprint
    check: a step whose output exists but whose inputs changed is not done."""
    from .fingerprint import DigestCache, Fingerprints

    plan.fingerprints = Fingerprints(plan.steps, plan.suite,
                                     DigestCache(layout.root / ".sha256-cache.json"))
    for step in plan.steps:
        step.current = plan.fingerprints.is_current


def _select(what: str, chosen: Sequence[str] | None, available: Sequence[str]) -> list[str]:
    if not chosen:
        return list(available)
    unknown = [c for c in chosen if c not in available]
    if unknown:
        raise SuiteError(f"--{what} {' '.join(unknown)}: not in this suite "
                         f"(it has: {', '.join(available)})")
    return [a for a in available if a in chosen]


def _data_paths(suite: Suite, layout: Layout) -> dict[str, Path | None]:
    if suite.synthetic is not None:
        from ..standins import study_data_paths

        return study_data_paths(layout.data)
    data = suite.data
    return {"coco": from_repo(data.coco), "ade20k": from_repo(data.ade20k),
            "cifar10": from_repo(data.cifar10),
            "cifar10c": from_repo(data.cifar10c) if data.cifar10c else None}


def _source(ctx: PlanContext, name: str, standin: Path | None) -> BackboneSource:
    backbone = ctx.suite.backbones[name]
    if standin is not None:
        path, deps = standin, [f"prepare:standin/{name}"]
    else:
        path, deps = from_repo(ctx.options.backbone_dir) / backbone.checkpoint, []
    need = (f"ImageNet checkpoint of '{name}' (--backbone-dir; "
            f"{backbone.url or backbone.source or 'see docs/reproduce.md'})", path)
    return BackboneSource(backbone, path, deps, need)


def _prepare_steps(ctx: PlanContext, backbones: Sequence[str], steps: list[Step]) -> dict[str, Path]:
    """Synthetic data and stand-in backbones (appended to ``steps``); returns {backbone:
    stand-in file}."""
    from ..standins import DATA_SCALES

    synthetic = ctx.suite.synthetic
    if synthetic is None:
        return {}
    scale = ctx.options.data_scale or synthetic.scale
    if scale not in DATA_SCALES:
        raise SuiteError(f"data scale {scale!r} (--data-scale or synthetic.scale); allowed: "
                         f"{', '.join(DATA_SCALES)}")
    data = ctx.layout.data
    steps.append(Step(
        "prepare:data", "prepare", f"synthetic data sets ({scale} scale)",
        [PYTHON, "-m", "robust_transfer.standins", "data", rel(data), "--scale", scale],
        done=lambda: _data_written(data, scale), makes=[data],
        inputs={"scale": scale, "sizes": DATA_SCALES[scale]}))
    ctx.data_step = steps[-1].id
    standins = {}
    for index, name in enumerate(ctx.suite.backbones):
        if name in backbones and not ctx.suite.backbones[name].registered:
            standins[name] = ctx.layout.standin(name)
            steps.append(_standin_step(ctx, name, index, DATA_SCALES[scale].get("standin_test")))
    return standins


def _standin_step(ctx: PlanContext, name: str, index: int, test_images: int | None) -> Step:
    """Pre-train the stand-in ``name`` (seeded by its position in the suite)."""
    spec = {"seed": index, **ctx.suite.synthetic.standin, **ctx.suite.backbones[name].standin}
    out, robustness = ctx.layout.standin(name), ctx.layout.standin_robustness(name)
    evaluation = ctx.suite.evaluation
    layout, augment = spec.get("layout", "torchvision"), spec.get("augment", "none")
    argv = [PYTHON, "-m", "robust_transfer.standins", "backbone", rel(out), "--name", name,
            "--layout", layout, "--augment", augment, "--steps", str(spec.get("steps", 150)),
            "--seed", str(spec["seed"])]
    test_images = spec.get("test_images") or test_images
    if test_images:
        argv += ["--test-images", str(test_images)]
    argv += ["--corruptions", *evaluation.corruption_args(),
             "--severities", *map(str, evaluation.severities)]
    return Step(f"prepare:standin/{name}", "prepare",
                f"stand-in backbone '{name}' ({augment} augmentation, {layout} layout)", argv,
                done=lambda: out.is_file() and robustness.is_file(), backbone=name, makes=[out],
                inputs={"argv": argv})


def _data_written(root: Path, scale: str) -> bool:
    from ..standins import DATA_SCALES

    try:
        return json.loads((root / "written.json").read_text()).get("sizes") == DATA_SCALES.get(scale)
    except (OSError, ValueError):
        return False


def _report_steps(ctx: PlanContext, plan: Plan, results: list[Path], standins: dict[str, Path],
                  evaluations: list[str]) -> list[Step]:
    """The report over every results file of the suite (those that exist when it runs), with
    the ImageNet robustness of each backbone: the suite's published numbers, or for stand-ins
    the table of their measured pre-training robustness (one more step)."""
    suite, steps = ctx.suite, []
    tail = ["--out", rel(plan.report_dir), "--title", suite.title,
            "--aggregate", str(suite.evaluation.aggregate)]
    deps = list(evaluations)
    if standins:
        table = ctx.layout.robustness_table(suite.name)
        entries = [f"{n}={rel(ctx.layout.standin_robustness(n))}" for n in standins]
        steps.append(Step(f"report:{suite.name}/imagenet-robustness", "report",
                          "table of the stand-ins' pre-training robustness",
                          [PYTHON, "-m", "robust_transfer.standins", "robustness-table",
                           rel(table), *entries],
                          deps=[f"prepare:standin/{n}" for n in standins]))
        deps.append(steps[-1].id)
        numbers = table
    else:
        numbers = suite.path
    if suite.imagenet_robustness_file is not None:  # measured numbers fill the gaps
        merged = ctx.layout.root / "reports" / f"imagenet_robustness_{suite.name}.json"
        steps.append(Step(f"report:{suite.name}/imagenet-numbers", "report",
                          "ImageNet robustness numbers (suite, then imagenet_robustness_file)",
                          [PYTHON, "-m", "robust_transfer.study.imagenet_numbers", rel(merged),
                           rel(numbers), rel(suite.imagenet_robustness_file)],
                          deps=[d for d in deps if d.startswith("report:")]))
        deps.append(steps[-1].id)
        numbers = merged
    tail += ["--imagenet-robustness", rel(numbers)]
    base = [PYTHON, "-m", "robust_transfer.cli", "report"]

    def resolve(step: Step) -> list[str]:
        existing = [rel(r) for r in results if r.is_file()]
        if not existing:
            raise SuiteError("no results to report")
        return base + existing + tail

    steps.append(Step(f"report:{suite.name}", "report", f"report of the suite '{suite.name}'",
                      base + [rel(r) for r in results] + tail, deps=deps, resolve=resolve,
                      stream=True, soft_deps=True))
    return steps


def _assign_gpus(steps: Sequence[Step], options: Options) -> None:
    """How many of the node's GPUs each step occupies: a distributed task's training
    ``options.job_gpus()`` (torchrun with --launcher pytorch), every other training and every
    evaluation one; conversions, merges, reports and the synthetic data none (CPU). Under
    Slurm, srun allocates the GPUs and the node's are not handed out."""
    if options.launcher == "slurm":
        return
    for step in steps:
        if step.kind == "train" and PLANNERS[step.task].distributed_training:
            step.gpus, step.torchrun = options.job_gpus(), options.launcher == "pytorch"
        elif step.kind in ("train", "evaluate"):
            step.gpus = 1

