"""Reproduce a table of the paper: a benchmark suite (``configs/*.yaml``) becomes a plan of
commands, which is printed (``--dry-run``) or executed.

The plan of a suite, per backbone x task x transfer mode::

    prepare   (--smoke and the demo only) synthetic data sets, stand-in ImageNet backbones
    convert   published ImageNet checkpoint -> the file mmdet / mmseg load (their converters)
    train     the task's own training tool (mmdetection/tools/train.py, mmsegmentation/tools/
              train.py, robust-models-transfer/src/main.py), or a trained checkpoint taken
              from --checkpoint-dir
    evaluate  the task's robustness tool (tools/test_robustness.py, main.py --eval-only 1) over
              the suite's corruptions x severities
    report    robust-transfer report over all results of the suite, with the suite's ImageNet
              robustness numbers (rank correlation with the downstream rPC, scatter plots)

Idempotent: a conversion whose output exists, a training whose final checkpoint exists and an
evaluation whose results file holds every cell are skipped; an interrupted training resumes
from its last checkpoint and an interrupted evaluation from its last finished cell (the tools'
``--resume``). Everything lands under ``--work-dir`` (``train/``, ``results/``, ``reports/``,
``logs/``); converted backbones go where the task configs look for them.

Two executors run the commands: ``subprocess`` (one process per command, what real runs use)
and ``fork`` (smoke runs and the demo: the frameworks are imported once, then every command runs
the same tool script in a forked child, which saves the ~10 s of imports per command on a
small CPU machine). Independent commands run in parallel with ``--jobs N``. With ``--gpus N``
the executor also hands out the node's GPUs (``gpu_slots``): each training or evaluation runs on
GPUs no other running command holds, torchrun jobs on master ports of their own.

Before anything runs, the preflight (``Plan.missing_inputs``) lists every data set and
checkpoint the commands still to run read that neither exists nor is written by an earlier step.
"""
from __future__ import annotations

import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

REPO = Path(__file__).resolve().parents[1]
PYTHON = "{python}"  # placeholder for the interpreter in a plan's commands

TASKS = ("detection", "segmentation", "classification")
MODES = ("fixed-feature", "full-network", "full-network+prime")
LAUNCHERS = ("none", "pytorch", "slurm")
STEP_KINDS = ("prepare", "convert", "train", "merge", "evaluate", "report")

#: Each task's tools (relative to the repository root).
TOOLS = {
    "detection": {"train": "mmdetection/tools/train.py",
                  "test": "mmdetection/tools/test_robustness.py",
                  "dist_train": "mmdetection/tools/dist_train.sh",
                  "dist_test": "mmdetection/tools/dist_test.sh",
                  "slurm_train": "mmdetection/tools/slurm_train.sh",
                  "slurm_test": "mmdetection/tools/slurm_test.sh"},
    "segmentation": {"train": "mmsegmentation/tools/train.py",
                     "test": "mmsegmentation/tools/test_robustness.py",
                     "dist_train": "mmsegmentation/tools/dist_train.sh",
                     "dist_test": "mmsegmentation/tools/dist_test.sh",
                     "slurm_train": "mmsegmentation/tools/slurm_train.sh",
                     "slurm_test": "mmsegmentation/tools/slurm_test.sh"},
    "classification": {"train": "robust-models-transfer/src/main.py",
                       "test": "robust-models-transfer/src/main.py"},
}
#: The detection converter of each published checkpoint layout (stand-ins use it with
#: ``--arch resnet18``; the segmentation file of a ResNet is the detection one).
MMDET_CONVERTERS = {
    "torchvision": "mmdetection/tools/model_converters/torchvision2mmdet.py",
    "ant": "mmdetection/tools/model_converters/ant2mmdet.py",
    "deepaugment": "mmdetection/tools/model_converters/deepaug2mmdet.py",
    "prime": "mmdetection/tools/model_converters/prime2mmdet.py",
    "robustness": "mmdetection/tools/model_converters/robustness2mmdet.py",
}
STANDIN_ARCH = "resnet18"
#: Modules the fork executor imports once, per task of the plan.
PRELOAD = {
    "detection": ("torch", "torchvision", "robust_transfer.integrations.mmdet",
                  "robust_transfer.integrations.openmmlab", "mmdet.datasets", "mmdet.engine",
                  "mmdet.evaluation", "mmdet.models", "mmdet.visualization"),
    "segmentation": ("torch", "torchvision", "robust_transfer.integrations.mmseg",
                     "robust_transfer.integrations.openmmlab", "mmseg.datasets", "mmseg.engine",
                     "mmseg.evaluation", "mmseg.models", "mmseg.visualization"),
    "classification": ("torch", "torchvision", "robust_transfer.classification"),
    "prepare": ("torch", "torchvision", "robust_transfer.corruptions"),
}


class SuiteError(ValueError):
    """A benchmark suite that cannot be planned (names what is wrong)."""


# ----------------------------------------------------------------------------- suites


def load_suite(path: str | Path, *, smoke: bool = False) -> dict:
    """Read and validate a suite; with ``smoke``, apply its ``smoke:`` section (synthetic data,
    stand-in backbones, the tiny configs). Returns the normalised suite."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"no suite file {path}")
    raw = yaml.safe_load(path.read_text())
    if not isinstance(raw, dict):
        raise SuiteError(f"{path}: expected a mapping at the top level")
    suite = _normalise(raw, path)
    if smoke:
        if not isinstance(raw.get("smoke"), dict):
            raise SuiteError(f"{path}: no 'smoke:' section")
        suite = _apply_smoke(suite, raw["smoke"], path)
    return suite


def _need(mapping: Mapping, key: str, where: str, kind=None):
    if key not in mapping:
        raise SuiteError(f"{where}: missing '{key}'")
    value = mapping[key]
    if kind is not None and not isinstance(value, kind):
        raise SuiteError(f"{where}: '{key}' must be a {getattr(kind, '__name__', kind)}")
    return value


def _normalise(raw: dict, path: Path) -> dict:
    where = str(path)
    tasks = list(_need(raw, "tasks", where, list))
    modes = list(_need(raw, "modes", where, list))
    bad = [t for t in tasks if t not in TASKS] + [m for m in modes if m not in MODES]
    if bad:
        raise SuiteError(f"{where}: unknown task/mode {bad}; tasks: {', '.join(TASKS)}; "
                         f"modes: {', '.join(MODES)}")
    evaluation = dict(_need(raw, "evaluation", where, dict))
    _check_evaluation(evaluation, where)
    backbones = _need(raw, "backbones", where, dict)
    if not backbones:
        raise SuiteError(f"{where}: no backbones")
    suite = {
        "path": path, "name": raw.get("suite", path.stem), "title": raw.get("title", path.stem),
        "tasks": tasks, "modes": modes, "evaluation": evaluation,
        "imagenet_metric": raw.get("imagenet_metric", "ImageNet robustness"),
        "task_settings": dict(raw.get("task_settings") or {}),
        "data": dict(raw.get("data") or {}), "synthetic": raw.get("synthetic"),
        "work_dir": raw.get("work_dir", "work_dirs/reproduce"),
        "run": dict(raw.get("run") or {}), "backbones": {},
    }
    for name, spec in backbones.items():
        if not isinstance(spec, dict):
            raise SuiteError(f"{where}: backbone {name!r} must be a mapping")
        bwhere = f"{where}: backbone {name!r}"
        entry = dict(spec)
        if "standin" in entry:  # a backbone pre-trained by the plan itself (the demo)
            entry["standin"] = dict(entry["standin"] or {})
            entry["standin"].setdefault("layout", "torchvision")
            if entry["standin"]["layout"] not in MMDET_CONVERTERS:
                raise SuiteError(f"{bwhere}: stand-in layout must be one of "
                                 f"{', '.join(MMDET_CONVERTERS)}")
            entry.update(arch=STANDIN_ARCH, format=entry["standin"]["layout"])
            if not raw.get("synthetic"):
                raise SuiteError(f"{bwhere}: stand-in backbones need a 'synthetic:' suite")
        else:
            for key in ("arch", "format", "checkpoint"):
                _need(entry, key, bwhere)
        entry.setdefault("configs", {})
        entry.setdefault("convert", {})
        for task in tasks:
            if task == "classification":
                continue
            for mode in modes:
                if not entry["configs"].get(task, {}).get(mode) and not \
                        suite["task_settings"].get(task, {}).get("configs", {}).get(mode):
                    raise SuiteError(f"{bwhere}: no {task} config for mode {mode!r}")
        suite["backbones"][name] = entry
    return suite


def _check_evaluation(evaluation: dict, where: str) -> None:
    from .corruptions import resolve_corruptions
    from .grid import parse_severities

    for key in ("corruptions", "severities"):
        _need(evaluation, key, f"{where}: evaluation")
    try:
        resolve_corruptions(evaluation["corruptions"])
        severities = parse_severities(evaluation["severities"])
    except ValueError as error:
        raise SuiteError(f"{where}: evaluation: {error}") from None
    evaluation["severities"] = [s for s in severities if s > 0]
    evaluation.setdefault("seed", 0)
    evaluation.setdefault("backend", "numpy")
    evaluation.setdefault("aggregate", "benchmark")
    if evaluation.get("corrupt_on") not in (None, "pipeline", "batch"):
        raise SuiteError(f"{where}: evaluation: corrupt_on must be pipeline or batch")
    if evaluation.get("corrupt_on") == "batch" and evaluation["backend"] != "torch":
        raise SuiteError(f"{where}: evaluation: corrupt_on: batch needs backend: torch")


def _apply_smoke(suite: dict, smoke: dict, path: Path) -> dict:
    """The suite's ``smoke:`` section: same backbones, tasks and modes, on synthetic data with
    stand-in backbones (in each published checkpoint's layout) and the tiny configs."""
    where = f"{path}: smoke"
    out = dict(suite)
    out["synthetic"] = dict(_need(smoke, "synthetic", where, dict))
    evaluation = dict(smoke.get("evaluation") or suite["evaluation"])
    _check_evaluation(evaluation, where)
    out["evaluation"] = evaluation
    out["task_settings"] = {task: {**suite["task_settings"].get(task, {}), **spec}
                            for task, spec in (smoke.get("task_settings") or {}).items()}
    out["work_dir"] = smoke.get("work_dir", "work_dirs/smoke")
    out["run"] = {**suite.get("run", {}), **(smoke.get("run") or {})}
    out["imagenet_metric"] = None  # measured on the stand-ins
    for task in suite["tasks"]:
        for mode in suite["modes"]:
            if task != "classification" and not out["task_settings"].get(task, {}).get("configs", {}).get(mode):
                raise SuiteError(f"{where}: no {task} config for mode {mode!r} "
                                 f"(task_settings: {task}: configs:)")
    standin = dict(smoke.get("standin") or {})
    out["backbones"] = {}
    for name, spec in suite["backbones"].items():
        layout = spec.get("format") if spec.get("format") in MMDET_CONVERTERS else "torchvision"
        out["backbones"][name] = {
            "label": spec.get("label", name), "arch": STANDIN_ARCH, "format": layout,
            "standin": {"layout": layout, **standin, **(spec.get("smoke_standin") or {})},
            "configs": {}, "convert": {}}
    return out


def _synthetic(suite: dict) -> bool:
    return bool(suite.get("synthetic"))


# ----------------------------------------------------------------------------- plan


@dataclass
class Step:
    """One command of a plan."""

    id: str
    kind: str
    title: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    deps: list[str] = field(default_factory=list)
    done: Callable[[], bool] | None = None
    resolve: Callable[["Step"], list[str]] | None = None  # argv recomputed just before running
    refs: list[str] = field(default_factory=list)  # repository files the command uses
    stream: bool = False  # show its output on the terminal even when logging to files
    soft_deps: bool = False  # runs after its deps even when some failed
    task: str | None = None
    gpus: int = 0  # GPUs of the node it occupies while it runs (the executor hands them out)
    torchrun: bool = False  # needs a master port of its own (tools/dist_*.sh read PORT)
    needs: list[tuple[str, Path]] = field(default_factory=list)  # (what, path) read by it
    makes: list[Path] = field(default_factory=list)  # files/folders it writes for later steps

    def is_done(self) -> bool:
        return bool(self.done and self.done())

    def command(self, python: str = sys.executable) -> list[str]:
        return [python if a == PYTHON else a for a in self.argv]

    def environment(self, python: str = sys.executable) -> dict[str, str]:
        """The step's own environment variables, with the interpreter filled in."""
        return {k: (python if v == PYTHON else v) for k, v in self.env.items()}

    def shell(self, python: str = "python", extra_env: Mapping[str, str] | None = None) -> str:
        """A runnable shell line (from the repository root): environment, then the command."""
        variables = {**(extra_env or {}), **self.environment(python)}
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in variables.items())
        return (env + " " if env else "") + " ".join(shlex.quote(a) for a in self.command(python))


@dataclass
class Plan:
    suite: dict
    steps: list[Step]
    work_dir: Path
    report_dir: Path
    notes: list[str] = field(default_factory=list)

    def missing_refs(self) -> list[str]:
        """Repository files the commands name that do not exist."""
        return sorted({ref for step in self.steps for ref in step.refs
                       if not (REPO / ref).exists()})

    def missing_inputs(self) -> list[str]:
        """The preflight: every data set and checkpoint that a step still to run reads, that does
        not exist and that no step of this plan writes, as ``"what: path"`` (each once)."""
        made = [Path(os.path.normpath(p)) for step in self.steps for p in step.makes]
        missing: list[str] = []
        for step in self.steps:
            if step.is_done():
                continue
            for what, path in step.needs:
                path = Path(os.path.normpath(path))
                if path.exists() or any(m == path or m in path.parents for m in made):
                    continue
                entry = f"{what}: {_rel(path)}"
                if entry not in missing:
                    missing.append(entry)
        return missing


def missing_message(missing: Sequence[str]) -> str:
    """One message listing every missing input (what the preflight reports)."""
    return (f"{len(missing)} input(s) of the plan are missing; nothing was started "
            "(docs/reproduce.md: data layout, ImageNet checkpoints):\n" +
            "\n".join(f"  - {entry}" for entry in missing))


@dataclass
class Options:
    """How to run a suite (the ``reproduce`` command's flags)."""

    smoke: bool = False
    gpus: int | None = None  # GPUs of the node, handed out by the executor (None: not managed)
    gpus_per_job: int | None = None  # GPUs of a detection/segmentation training (default: gpus)
    launcher: str = "none"
    partition: str | None = None
    cpus_per_task: int = 5  # Slurm: CPU cores per task (data loading workers)
    time_limit: str = "2-00:00:00"  # Slurm: time limit of each srun job
    base_port: int = 29500  # first torchrun master port; concurrent trainings count up
    work_dir: str | None = None
    checkpoint_dir: str | None = None
    backbone_dir: str = "checkpoints/imagenet"
    tasks: Sequence[str] | None = None
    backbones: Sequence[str] | None = None
    modes: Sequence[str] | None = None
    shard: str | None = None
    eval_shards: int = 1  # each detection/segmentation grid split into this many one-GPU jobs
    steps: Sequence[str] | None = None
    report_dir: str | None = None


def _rel(path: str | Path) -> str:
    """``path`` relative to the repository root when inside it, else absolute."""
    path = Path(path)
    absolute = path if path.is_absolute() else (REPO / path)
    absolute = Path(os.path.normpath(absolute))
    try:
        return str(absolute.relative_to(REPO))
    except ValueError:
        return str(absolute)


def _abs(path: str | Path) -> Path:
    path = Path(path)
    return path if path.is_absolute() else REPO / path


def _results_complete(path: Path, cells: Sequence[tuple[str, int]]) -> bool:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    have = document.get("cells", {})
    return all(str(s) in have.get(c, {}) for c, s in cells)


def _classification_done(exp_dir: Path, epochs: int) -> bool:
    try:
        rows = json.loads((exp_dir / "log.json").read_text())
    except (OSError, ValueError):
        return False
    return (exp_dir / "checkpoint.pt.latest").is_file() and \
        max((int(r.get("epoch", 0)) for r in rows), default=0) >= epochs


def _grid_cells(evaluation: Mapping) -> list[tuple[str, int]]:
    from .corruptions import resolve_corruptions

    names = resolve_corruptions(evaluation["corruptions"])
    return [("clean", 0)] + [(c, s) for c in names for s in evaluation["severities"]]


def _corruption_args(evaluation: Mapping) -> list[str]:
    value = evaluation["corruptions"]
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _select(what: str, chosen: Sequence[str] | None, available: Sequence[str]) -> list[str]:
    if not chosen:
        return list(available)
    unknown = [c for c in chosen if c not in available]
    if unknown:
        raise SuiteError(f"--{what} {' '.join(unknown)}: not in this suite "
                         f"(it has: {', '.join(available)})")
    return [a for a in available if a in chosen]


def build_plan(suite: dict, options: Options) -> Plan:
    """Every command that reproduces ``suite`` with ``options``, in dependency order."""
    from .grid import parse_shard

    if options.launcher not in LAUNCHERS:
        raise SuiteError(f"--launcher {options.launcher!r}; allowed: {', '.join(LAUNCHERS)}")
    if options.launcher == "slurm" and not options.partition:
        raise SuiteError("--launcher slurm needs --partition")
    _check_gpu_options(options)
    shard_index, shard_count = parse_shard(options.shard)
    steps_wanted = _select("steps", options.steps, STEP_KINDS)
    tasks = _select("tasks", options.tasks, suite["tasks"])
    backbones = _select("backbones", options.backbones, list(suite["backbones"]))
    modes = _select("modes", options.modes, suite["modes"])
    work = _abs(options.work_dir or suite["work_dir"])
    evaluation = suite["evaluation"]
    cells = _grid_cells(evaluation)
    synthetic = _synthetic(suite)
    plan = Plan(suite, [], work, _abs(options.report_dir) if options.report_dir
                else work / "reports" / suite["name"])
    env: dict[str, dict[str, str]] = {t: {} for t in TASKS}
    data = _data_paths(suite, work)
    if synthetic:
        env["detection"]["SYNTHETIC_COCO_ROOT"] = _rel(data["coco"])
        env["segmentation"]["SYNTHETIC_ADE20K_ROOT"] = _rel(data["ade20k"])
    data_cfg = {task: [] if synthetic else _data_cfg_options(task, data) for task in TASKS}

    def add(step: Step) -> Step:
        plan.steps.append(step)
        return step

    # -- prepare: synthetic data and stand-in backbones
    data_step = None
    standin_files: dict[str, Path] = {}
    if synthetic:
        from .standins import DATA_SCALES

        scale = os.environ.get("RT_DEMO_SCALE") or suite["synthetic"].get("scale", "ci")
        if scale not in DATA_SCALES:
            raise SuiteError(f"data scale {scale!r} (RT_DEMO_SCALE or synthetic.scale); allowed: "
                             f"{', '.join(DATA_SCALES)}")
        data_step = add(Step(
            "prepare:data", "prepare", f"synthetic data sets ({scale} scale)",
            [PYTHON, "-m", "robust_transfer.standins", "data", _rel(work / "data"), "--scale", scale],
            done=lambda: _data_written(work / "data", scale), task="prepare",
            makes=[work / "data"]))
        for index, name in enumerate(suite["backbones"]):
            if name not in backbones:
                continue
            spec = {"seed": index, **suite["synthetic"].get("standin", {}),
                    **suite["backbones"][name]["standin"]}
            out = work / "standins" / f"{name}.pth"
            standin_files[name] = out
            argv = [PYTHON, "-m", "robust_transfer.standins", "backbone", _rel(out), "--name", name,
                    "--layout", spec.get("layout", "torchvision"),
                    "--augment", spec.get("augment", "none"), "--steps", str(spec.get("steps", 150)),
                    "--seed", str(spec["seed"])]
            test_images = spec.get("test_images") or DATA_SCALES[scale].get("standin_test")
            if test_images:
                argv += ["--test-images", str(test_images)]
            argv += ["--corruptions", *_corruption_args(evaluation),
                     "--severities", *map(str, evaluation["severities"])]
            add(Step(f"prepare:standin/{name}", "prepare",
                     f"stand-in backbone '{name}' ({spec.get('augment', 'none')} augmentation, "
                     f"{spec.get('layout', 'torchvision')} layout)", argv,
                     done=lambda out=out: out.is_file() and
                     out.with_suffix("").with_name(out.stem + ".robustness.json").is_file(),
                     task="prepare", makes=[out]))

    # -- per backbone: conversions; per task x mode: training and evaluation
    backbone_dir = _abs(options.backbone_dir)
    results: list[Path] = []
    evaluation_ids: list[str] = []
    evaluations = 0
    for name in backbones:
        spec = suite["backbones"][name]
        source = standin_files.get(name) or backbone_dir / spec["checkpoint"]
        source_deps = [f"prepare:standin/{name}"] if name in standin_files else []
        source_need = (f"ImageNet checkpoint of '{name}' (--backbone-dir; "
                       f"{spec.get('url') or spec.get('source', 'see docs/reproduce.md')})", source)
        converted = {} if options.checkpoint_dir else \
            _convert_steps(name, spec, [t for t in tasks if t != "classification"], source, work,
                           synthetic)
        for step in {id(step): step for _, step in converted.values()}.values():
            step.deps = list(source_deps)
            step.needs.append(source_need)
            add(step)
        for task in tasks:
            settings = suite["task_settings"].get(task, {})
            trained_from_dir = {}
            if options.checkpoint_dir:  # absent files are listed by the preflight
                trained_from_dir = {m: _trained_checkpoint(options.checkpoint_dir, spec, task, name, m)
                                    for m in modes}
            for mode in modes:
                # main.py names its results' model after the experiment folder: one per model
                train_dir = work / "train" / task / (f"{name}__{mode}" if task == "classification"
                                                     else f"{name}/{mode}")
                result = work / "results" / task / f"{name}__{mode}.json"
                train_id = None
                data_needs = _data_needs(task, data, evaluation, synthetic)
                if trained_from_dir:
                    checkpoint = trained_from_dir[mode]
                    model_need = (f"trained {task} model of '{name}' / {mode} (--checkpoint-dir)",
                                  checkpoint)
                elif task == "classification":
                    step = _classification_train(suite, spec, name, mode, source, train_dir, data,
                                                 options, settings)
                    step.deps = source_deps + ([data_step.id] if data_step else [])
                    step.needs += [source_need, *data_needs["train"]]
                    train_id = add(step).id
                    checkpoint = None  # main.py --eval-only finds it in its experiment folder
                    model_need = (f"trained {task} model of '{name}' / {mode} (its train step)",
                                  step.makes[0])
                else:
                    output, convert = converted[task]
                    config = _task_config(suite, spec, task, mode)
                    step, checkpoint = _openmmlab_train(task, name, mode, config, train_dir,
                                                        output, options, settings, env[task],
                                                        data_cfg[task])
                    step.deps = [convert.id] + ([data_step.id] if data_step else [])
                    step.needs += [(f"converted backbone of '{name}' for {task} (its convert "
                                    "step)", output), *data_needs["train"]]
                    train_id = add(step).id
                    model_need = (f"trained {task} model of '{name}' / {mode} (its train step)",
                                  checkpoint)
                # evaluation (its grid optionally sharded)
                evaluations += 1
                if task == "classification":
                    if shard_count > 1 and (evaluations - 1) % shard_count != shard_index:
                        continue  # main.py has no --shard: whole evaluations go round-robin
                    step = _classification_eval(suite, spec, name, mode, source, train_dir, data,
                                                options, settings, result, checkpoint, cells)
                    parts = [step]
                else:
                    config = _task_config(suite, spec, task, mode)
                    split = options.eval_shards if shard_count == 1 else 1
                    parts = [_openmmlab_eval(task, name, mode, config, checkpoint, result,
                                             evaluation, options, env[task], cells, train_dir,
                                             settings, data_cfg[task],
                                             part=(j, split) if split > 1 else None)
                             for j in range(split)]
                    merge = _merge_step(task, name, mode, result, cells) if shard_count == 1 else None
                    if merge is not None:
                        add(merge)
                        for part in parts:
                            part.deps.append(merge.id)
                for part in parts:
                    part.deps.append(train_id or (data_step.id if data_step else None))
                    part.deps = [d for d in part.deps if d]
                    part.needs += [model_need, *data_needs["evaluate"]]
                    add(part)
                if len(parts) > 1:  # the node's shards of one grid, merged into its results
                    evaluation_ids.append(add(_merge_parts_step(task, name, mode, result, cells,
                                                                parts)).id)
                else:
                    evaluation_ids.append(parts[0].id)
                results.append(result)

    # -- report
    if shard_count == 1:
        for step in _report_steps(suite, plan, results, standin_files, work, evaluation_ids):
            add(step)
    else:
        plan.notes.append(f"shard {options.shard}: no report; when every shard is done, run the "
                          "suite again without --shard (merges the shard files, then reports)")
    plan.steps = [s for s in plan.steps if s.kind in steps_wanted]
    _assign_gpus(plan.steps, options)
    kept = {s.id for s in plan.steps}
    for step in plan.steps:
        step.deps = [d for d in step.deps if d in kept]
    missing = plan.missing_refs()
    if missing:
        raise SuiteError("the plan names files that do not exist: " + ", ".join(missing))
    return plan


def _data_written(root: Path, scale: str) -> bool:
    from .standins import DATA_SCALES

    try:
        return json.loads((root / "written.json").read_text()).get("sizes") == DATA_SCALES.get(scale)
    except (OSError, ValueError):
        return False


def _data_paths(suite: dict, work: Path) -> dict[str, Path]:
    if _synthetic(suite):
        from .standins import study_data_paths

        return study_data_paths(work / "data")
    data = suite.get("data", {})
    return {"coco": _abs(data.get("coco", "data/coco")),
            "ade20k": _abs(data.get("ade20k", "data/ade/ADEChallengeData2016")),
            "cifar10": _abs(data.get("cifar10", "data/cifar10")),
            "cifar10c": _abs(data["cifar10c"]) if data.get("cifar10c") else None}


#: What each task reads of its real data set (relative to the suite's ``data:`` entry), for
#: training (which also validates) and for the robustness grid.
DATA_FILES = {
    "detection": {"train": ("annotations/instances_train2017.json", "train2017",
                            "annotations/instances_val2017.json", "val2017"),
                  "evaluate": ("annotations/instances_val2017.json", "val2017")},
    "segmentation": {"train": ("images/training", "annotations/training",
                               "images/validation", "annotations/validation"),
                     "evaluate": ("images/validation", "annotations/validation")},
    "classification": {"train": tuple(f"cifar-10-batches-py/{f}" for f in (
                           "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                           "data_batch_5", "test_batch", "batches.meta")),
                       "evaluate": ("cifar-10-batches-py/test_batch", "cifar-10-batches-py/batches.meta")},
}
DATA_NAMES = {"detection": ("coco", "COCO 2017"), "segmentation": ("ade20k", "ADE20K"),
              "classification": ("cifar10", "CIFAR-10")}


def _data_needs(task: str, data: dict, evaluation: Mapping,
                synthetic: bool) -> dict[str, list[tuple[str, Path]]]:
    """{"train": [...], "evaluate": [...]}: the (what, path) of the data set a task's training
    and evaluation read. Synthetic data: the folders the plan's own data step writes."""
    key, title = DATA_NAMES[task]
    if synthetic:
        need = [(f"synthetic {title} (the prepare:data step)", data[key])]
        return {"train": need, "evaluate": need}
    def under(what: str, root: Path, files) -> list[tuple[str, Path]]:
        # an absent data set is one entry (its folder), not one per file
        return [(what, root / f) for f in files] if root.is_dir() else [(what, root)]

    what = f"{title} (suite data: {key})"
    needs = {kind: under(what, data[key], files) for kind, files in DATA_FILES[task].items()}
    if task == "classification" and data.get("cifar10c"):
        from .corruptions import resolve_corruptions

        files = [f"{c}.npy" for c in ["labels", *resolve_corruptions(evaluation["corruptions"])]]
        needs["evaluate"] += under("CIFAR-10-C (suite data: cifar10c)", data["cifar10c"], files)
    return needs


def _data_cfg_options(task: str, data: dict) -> list[str]:
    """``--cfg-options`` that point a task config's data sets at the suite's ``data:`` entry (the
    configs inherit the packages' defaults, data/coco/ and data/ade/ADEChallengeData2016)."""
    if task == "detection":
        root = _rel(data["coco"]).rstrip("/") + "/"  # mmdet joins data_root + prefix as strings
        annotations = root + "annotations/instances_val2017.json"
        return [f"{split}_dataloader.dataset.data_root={root}" for split in ("train", "val", "test")] + \
            [f"val_evaluator.ann_file={annotations}", f"test_evaluator.ann_file={annotations}"]
    if task == "segmentation":
        root = _rel(data["ade20k"])
        return [f"{split}_dataloader.dataset.data_root={root}" for split in ("train", "val", "test")]
    return []  # main.py takes --data and --cifar10c-dir


def _check_gpu_options(options: Options) -> None:
    """Reject GPU counts that cannot be planned, naming the flag."""
    if options.gpus is not None and options.gpus < 1:
        raise SuiteError(f"--gpus must be >= 1, got {options.gpus}")
    per_job = options.gpus_per_job
    if per_job is not None and per_job < 1:
        raise SuiteError(f"--gpus-per-job must be >= 1, got {per_job}")
    if per_job and per_job > 1 and options.launcher == "none":
        raise SuiteError("--gpus-per-job > 1 needs --launcher pytorch (torchrun) or slurm")
    if per_job and options.gpus and per_job > options.gpus and options.launcher == "pytorch":
        raise SuiteError(f"--gpus-per-job {per_job} is more than the node's --gpus {options.gpus}")
    if options.eval_shards < 1:
        raise SuiteError(f"--eval-shards must be >= 1, got {options.eval_shards}")
    if options.cpus_per_task < 1:
        raise SuiteError(f"--cpus-per-task must be >= 1, got {options.cpus_per_task}")


def _job_gpus(options: Options) -> int:
    """GPUs of one detection/segmentation training: one process without a launcher, else
    ``--gpus-per-job`` (default: all ``--gpus``)."""
    if options.launcher == "none":
        return 1
    return options.gpus_per_job or options.gpus or 1


def _assign_gpus(steps: Sequence[Step], options: Options) -> None:
    """How many of the node's GPUs each step occupies: a detection/segmentation training
    ``_job_gpus`` (torchrun with --launcher pytorch), every other training and every evaluation
    one; conversions, merges, reports and the synthetic data none (CPU). Under Slurm, srun
    allocates the GPUs and the node's are not handed out."""
    if options.launcher == "slurm":
        return
    for step in steps:
        if step.kind == "train" and step.task in ("detection", "segmentation"):
            step.gpus, step.torchrun = _job_gpus(options), options.launcher == "pytorch"
        elif step.kind in ("train", "evaluate"):
            step.gpus = 1


def _trained_checkpoint(directory: str, spec: dict, task: str, name: str, mode: str) -> Path:
    released = (spec.get("released") or {}).get(task, {}).get(mode)
    root = _abs(directory)
    if released and (root / released).is_file():
        return root / released
    return root / task / f"{name}_{mode}.pth"


def _task_config(suite: dict, spec: dict, task: str, mode: str) -> str:
    return spec["configs"].get(task, {}).get(mode) or \
        suite["task_settings"][task]["configs"][mode]


def _convert_steps(name: str, spec: dict, tasks: Sequence[str], source: Path, work: Path,
                   synthetic: bool) -> dict[str, tuple[Path, Step]]:
    """{task: (converted file, its conversion step)} for detection / segmentation.

    Published checkpoints: the converter the suite names per task, writing where the paper
    configs look. Stand-ins: the layout's mmdet converter with ``--arch resnet18`` once, whose
    output both frameworks load (mmseg's ResNet has torchvision's keys, as mmdet's)."""
    if not tasks:
        return {}
    if synthetic:
        output = work / "converted" / f"{name}_{STANDIN_ARCH}_mmdet.pth"
        step = _make_convert(name, "/".join(tasks), MMDET_CONVERTERS[spec["format"]], source,
                             output, ["--arch", STANDIN_ARCH])
        return {task: (output, step) for task in tasks}
    out = {}
    for task in tasks:
        convert = spec["convert"].get(task)
        if not convert or "tool" not in convert or "output" not in convert:
            raise SuiteError(f"backbone {name!r}: no {task} converter (convert: {task}: "
                             "{tool: ..., output: ...})")
        output = _abs(convert["output"])
        out[task] = (output, _make_convert(name, task, convert["tool"], source, output,
                                           [str(a) for a in convert.get("args", [])]))
    return out


def _make_convert(name, task, tool, source, output, extra):
    return Step(f"convert:{task.split('/')[0]}/{name}", "convert",
                f"convert '{name}' for {task}",
                [PYTHON, tool, *extra, _rel(source), _rel(output)],
                done=lambda: output.is_file(), refs=[tool], task="prepare", makes=[output])


def _cfg_options(options: list[str]) -> list[str]:
    return ["--cfg-options", *options] if options else []


def _launch_train(task: str, config: str, work_dir: Path, args: list[str], cfg: list[str],
                  options: Options, job: str) -> tuple[list[str], dict[str, str], list[str]]:
    tools = TOOLS[task]
    python = {"PYTHON": PYTHON}
    if options.launcher == "none":
        return [PYTHON, tools["train"], config, "--work-dir", _rel(work_dir), *args, *cfg], {}, \
            [tools["train"]]
    gpus = _job_gpus(options)
    if options.launcher == "pytorch":
        return ["bash", tools["dist_train"], config, str(gpus), "--work-dir",
                _rel(work_dir), *args, *cfg], python, [tools["dist_train"], tools["train"]]
    gpus = {**_slurm_env(options, gpus), **python}
    if task == "detection":  # PARTITION JOB CONFIG WORK_DIR [ARGS]
        argv = ["bash", tools["slurm_train"], options.partition, job, config, _rel(work_dir), *args, *cfg]
    else:  # PARTITION JOB CONFIG [ARGS]
        argv = ["bash", tools["slurm_train"], options.partition, job, config, "--work-dir",
                _rel(work_dir), *args, *cfg]
    return argv, gpus, [tools["slurm_train"], tools["train"]]


def _slurm_env(options: Options, gpus: int) -> dict[str, str]:
    """What tools/slurm_*.sh read: GPUs of the job, CPU cores per task, time limit."""
    return {"GPUS": str(gpus), "GPUS_PER_NODE": str(min(gpus, 8)),
            "CPUS_PER_TASK": str(options.cpus_per_task), "TIME_LIMIT": options.time_limit}


def _openmmlab_train(task, name, mode, config, train_dir: Path, converted: Path | None,
                     options: Options, settings: dict, env: dict,
                     data_cfg: Sequence[str] = ()) -> tuple[Step, Path]:
    final = train_dir / settings.get("final_checkpoint", "latest.pth")
    cfg = [f"model.backbone.init_cfg.checkpoint={_rel(converted)}"] if converted else []
    cfg.append(f"transfer.backbone={name}")
    cfg += list(data_cfg)
    cfg += [str(o) for o in settings.get("cfg_options", [])]
    args: list[str] = []
    if (train_dir / "last_checkpoint").is_file() and not final.is_file():
        args.append("--resume")
    gpus = _job_gpus(options)
    recipe_gpus = int(settings.get("recipe_gpus", gpus))
    if options.launcher != "none" and gpus != recipe_gpus:
        if task == "detection":
            args.append("--auto-scale-lr")  # linear lr scaling to the actual total batch
        elif settings.get("recipe_batch"):
            total = int(settings["recipe_batch"])
            if total % gpus:
                raise SuiteError(f"segmentation: the recipe's batch of {total} images cannot be "
                                 f"split over {gpus} GPUs (--gpus / --gpus-per-job)")
            cfg.append(f"train_dataloader.batch_size={total // gpus}")
    argv, launch_env, refs = _launch_train(task, config, train_dir, args, _cfg_options(cfg),
                                           options, f"train-{task}-{name}-{mode}")
    step = Step(f"train:{task}/{name}/{mode}", "train", f"train {task} / {name} / {mode}", argv,
                env={**env, **launch_env}, done=lambda: final.is_file(),
                refs=[config, *refs], task=task, makes=[final])
    return step, final


def _openmmlab_eval(task, name, mode, config, checkpoint: Path, result: Path, evaluation,
                    options: Options, env: dict, cells, train_dir: Path, settings: dict,
                    data_cfg: Sequence[str] = (), part: tuple[int, int] | None = None) -> Step:
    """The robustness tool over the grid (or shard ``part`` = (i, n) of it, --eval-shards):
    one process on one GPU (a Slurm job of one GPU under --launcher slurm); grids and shards
    run side by side, one per free GPU of the node."""
    shard = f"{part[0]}/{part[1]}" if part else options.shard
    tools = TOOLS[task]
    args = ["--out", _rel(result.with_suffix(".pkl")),
            "--corruptions", *_corruption_args(evaluation),
            "--severities", "0", *map(str, evaluation["severities"]),
            "--seed", str(evaluation["seed"]), "--backend", str(evaluation["backend"]),
            *(["--corrupt-on", str(evaluation["corrupt_on"])] if evaluation.get("corrupt_on") else []),
            "--resume", "--final-prints", "P", "mPC", "rPC",
            "--final-prints-aggregate", "all" if evaluation["aggregate"] == "all" else "benchmark",
            "--work-dir", _rel(train_dir / "robustness")]
    if shard:
        args += ["--shard", shard]
    args += ["--cfg-options", f"transfer.backbone={name}", *data_cfg,
             *[str(o) for o in settings.get("eval_cfg_options", [])]]
    launch_env: dict[str, str] = {}
    refs = [config, tools["test"]]
    if options.launcher in ("none", "pytorch"):
        argv = [PYTHON, tools["test"], config, _rel(checkpoint), *args]
    else:
        argv = ["bash", tools["slurm_test"], options.partition, f"test-{task}-{name}-{mode}",
                config, _rel(checkpoint), "--robustness", *args]
        launch_env = {**_slurm_env(options, 1), "PYTHON": PYTHON}
        refs = refs + [tools["slurm_test"]]
    if shard:
        from .grid import parse_shard

        i, n = parse_shard(shard)
        shard_file = result.with_name(f"{result.stem}.shard{i}-of-{n}.json")
        done = lambda: _results_complete(result, cells) or _shard_complete(shard_file, cells, i, n)  # noqa: E731
    else:
        done = lambda: _results_complete(result, cells)  # noqa: E731
    suffix = f"#{part[0]}" if part else ""
    return Step(f"evaluate:{task}/{name}/{mode}{suffix}", "evaluate",
                f"robustness of {task} / {name} / {mode}" + (f" (shard {shard})" if part else ""),
                argv, env={**env, **launch_env}, done=done, refs=refs, task=task, makes=[result])


def _shard_complete(path: Path, cells, index: int, count: int) -> bool:
    from .grid import Cell, select_shard

    mine = select_shard([Cell(c, s) for c, s in cells], index, count)
    return _results_complete(path, [(c.corruption, c.severity) for c in mine])


def _merge_step(task, name, mode, result: Path, cells) -> Step | None:
    shards = sorted(result.parent.glob(f"{result.stem}.shard*-of-*.json"))
    if not shards or _results_complete(result, cells):
        return None
    inputs = [_rel(s) for s in shards] + ([_rel(result)] if result.is_file() else [])
    return Step(f"merge:{task}/{name}/{mode}", "merge", f"merge {len(shards)} shard files of "
                f"{task} / {name} / {mode}",
                [PYTHON, "-m", "robust_transfer.cli", "merge", *inputs, "-o", _rel(result)],
                done=lambda: _results_complete(result, cells), task="prepare", makes=[result])


def _merge_parts_step(task, name, mode, result: Path, cells, parts: Sequence[Step]) -> Step:
    """Merge the shard files ``parts`` wrote (``--eval-shards``) into the grid's results file;
    its inputs are found when it runs (a finished shard may have been merged before)."""
    count = len(parts)
    base = [PYTHON, "-m", "robust_transfer.cli", "merge"]
    files = [result.with_name(f"{result.stem}.shard{i}-of-{count}.json") for i in range(count)]

    def resolve(step: Step) -> list[str]:
        inputs = [_rel(f) for f in files if f.is_file()] + ([_rel(result)] if result.is_file() else [])
        return base + inputs + ["-o", _rel(result)]

    return Step(f"merge:{task}/{name}/{mode}#shards", "merge",
                f"merge the {count} shards of {task} / {name} / {mode}",
                base + [_rel(f) for f in files] + ["-o", _rel(result)],
                deps=[p.id for p in parts], resolve=resolve,
                done=lambda: _results_complete(result, cells), task="prepare", makes=[result])


def _classification_args(suite, spec, name, mode, source: Path, train_dir: Path, data, settings):
    recipe = dict(settings.get("args") or {})
    arch = recipe.pop("arch", spec["arch"])
    argv = [PYTHON, TOOLS["classification"]["train"], "--arch", arch,
            "--dataset", settings.get("dataset", "cifar10"), "--data", _rel(data["cifar10"]),
            "--out-dir", _rel(train_dir.parent), "--exp-name", train_dir.name,
            "--model-path", _rel(source), "--model-format", spec["format"],
            "--backbone-name", name,
            "--freeze-level", "4" if mode == "fixed-feature" else "-1"]
    for key, value in recipe.items():
        argv += [f"--{key}", str(value)]
    if mode == "full-network+prime":
        argv.append("--prime")
    return argv


def _classification_train(suite, spec, name, mode, source, train_dir: Path, data,
                          options: Options, settings) -> Step:
    argv = _classification_args(suite, spec, name, mode, source, train_dir, data, settings)
    if (train_dir / "checkpoint.pt.latest").is_file():
        argv.append("--resume")
    epochs = int((settings.get("args") or {}).get("epochs", 150))
    argv = _slurm_wrap(argv, options, f"train-classification-{name}-{mode}")
    return Step(f"train:classification/{name}/{mode}", "train",
                f"train classification / {name} / {mode}", argv,
                done=lambda: _classification_done(train_dir, epochs),
                refs=[TOOLS["classification"]["train"]], task="classification",
                makes=[train_dir / "checkpoint.pt.latest"])


def _classification_eval(suite, spec, name, mode, source, train_dir: Path, data, options: Options,
                         settings, result: Path, checkpoint: Path | None, cells) -> Step:
    evaluation = suite["evaluation"]
    argv = _classification_args(suite, spec, name, mode, source, train_dir, data, settings)
    corruptions = evaluation["corruptions"]
    argv += ["--eval-only", "1",
             "--eval-corruptions", corruptions if isinstance(corruptions, str) else ",".join(corruptions),
             "--severities", *map(str, evaluation["severities"]),
             "--results", _rel(result), "--resume"]
    if data.get("cifar10c"):
        argv += ["--cifar10c-dir", _rel(data["cifar10c"])]
    else:
        argv += ["--corruption-backend", str(evaluation["backend"]),
                 "--corruption-seed", str(evaluation["seed"])]
    if checkpoint is not None:
        argv += ["--eval-checkpoint", _rel(checkpoint)]
    if settings.get("eval_images"):
        argv += ["--eval-subset", str(settings["eval_images"])]
    argv = _slurm_wrap(argv, options, f"test-classification-{name}-{mode}")
    return Step(f"evaluate:classification/{name}/{mode}", "evaluate",
                f"robustness of classification / {name} / {mode}", argv,
                done=lambda: _results_complete(result, cells),
                refs=[TOOLS["classification"]["test"]], task="classification", makes=[result])


def _slurm_wrap(argv: list[str], options: Options, job: str) -> list[str]:
    """``argv`` as a one-GPU Slurm job (--launcher slurm), with the CPUs and time limit."""
    if options.launcher != "slurm":
        return argv
    return ["srun", "-p", options.partition, f"--job-name={job}", "--gres=gpu:1", "--ntasks=1",
            f"--cpus-per-task={options.cpus_per_task}", f"--time={options.time_limit}",
            "--kill-on-bad-exit=1", *argv]


def _report_steps(suite, plan: Plan, results: list[Path], standin_files: dict, work: Path,
                  evaluation_ids: list[str]) -> list[Step]:
    """The report over every results file of the suite (those that exist when it runs), with
    the ImageNet robustness of each backbone: the suite's published numbers, or for stand-ins
    the table of their measured pre-training robustness (one more step)."""
    steps = []
    tail = ["--out", _rel(plan.report_dir), "--title", suite["title"],
            "--aggregate", str(suite["evaluation"]["aggregate"])]
    deps = list(evaluation_ids)
    if standin_files:
        table = work / "standins" / f"robustness_{suite['name']}.json"
        entries = [f"{n}={_rel(p.with_suffix('').with_name(p.stem + '.robustness.json'))}"
                   for n, p in standin_files.items()]
        steps.append(Step(f"report:{suite['name']}/imagenet-robustness", "report",
                          "table of the stand-ins' pre-training robustness",
                          [PYTHON, "-m", "robust_transfer.standins", "robustness-table",
                           _rel(table), *entries],
                          deps=[f"prepare:standin/{n}" for n in standin_files], task="report"))
        deps.append(steps[-1].id)
        tail += ["--imagenet-robustness", _rel(table)]
    else:
        tail += ["--imagenet-robustness", _rel(suite["path"])]
    base = [PYTHON, "-m", "robust_transfer.cli", "report"]

    def resolve(step: Step) -> list[str]:
        existing = [_rel(r) for r in results if r.is_file()]
        if not existing:
            raise SuiteError("no results to report")
        return base + existing + tail

    steps.append(Step(f"report:{suite['name']}", "report", f"report of the suite '{suite['name']}'",
                      base + [_rel(r) for r in results] + tail, deps=deps, resolve=resolve,
                      stream=True, soft_deps=True, task="report"))
    return steps


# ----------------------------------------------------------------------------- execution


def print_plan(plan: Plan, file=None, placements: Mapping[str, Any] | None = None) -> None:
    """Every command of the plan, in order, with its state (``# done`` = would be skipped), as
    runnable shell lines from the repository root; with ``placements`` ({step id:
    :class:`~robust_transfer.gpu_slots.Placement`}), each step's GPU ids and master port."""
    file = file or sys.stdout
    placements = placements or {}
    python = _rel(sys.executable) if Path(sys.executable).is_relative_to(REPO) else sys.executable
    print(f"# suite {plan.suite['name']}: {plan.suite['title']}", file=file)
    print(f"# {len(plan.steps)} steps; work dir {_rel(plan.work_dir)}; report {_rel(plan.report_dir)}; "
          f"commands run from {REPO}", file=file)
    if placements:
        print("# GPUs and ports: as handed out if the steps ran in this order and took equally "
              "long (at run time a step takes the first free ones)", file=file)
    for note in plan.notes:
        print(f"# note: {note}", file=file)
    for number, step in enumerate(plan.steps, 1):
        state = "done, skipped" if step.is_done() else "to run"
        placement = placements.get(step.id)
        where = ""
        if placement is not None:
            where = f"; GPU {','.join(placement.gpus)}" + \
                (f", port {placement.port}" if placement.port is not None else "")
        print(f"\n# [{number}/{len(plan.steps)}] {step.title} ({state}{where})", file=file)
        print(step.shell(python, placement.env() if placement is not None else None), file=file)


@dataclass
class _Running:
    step: Step
    pid: int
    start: float
    log: Path | None
    popen: Any = None
    placement: Any = None  # the GPUs and port it holds (gpu_slots.Placement)


class Executor:
    """Runs a plan's steps: in dependency order, up to ``jobs`` at a time, skipping finished
    ones; a failed step skips its dependants and the rest goes on."""

    def __init__(self, plan: Plan, *, mode: str = "subprocess", jobs: int = 1,
                 log_dir: Path | None = None, threads: int | None = None, python: str = sys.executable,
                 slots: Any = None):
        """``slots`` (a :class:`~robust_transfer.gpu_slots.GpuSlots`): the node's GPUs and
        ports; a step with ``gpus`` starts only when that many are free and runs on them."""
        if mode not in ("subprocess", "fork"):
            raise ValueError(f"executor must be subprocess or fork, got {mode!r}")
        if mode == "fork" and not hasattr(os, "fork"):
            mode = "subprocess"
        self.plan, self.mode, self.jobs = plan, mode, max(1, int(jobs))
        self.log_dir = log_dir
        self.threads = threads
        self.python = python
        self.slots = slots
        self.placements: dict[str, Any] = {}  # step id -> the placement it ran with
        self.status: dict[str, str] = {}
        self.seconds: dict[str, float] = {}

    # -- launching
    def _env(self, step: Step) -> dict[str, str]:
        env = dict(os.environ)
        placement = self.placements.get(step.id)
        if placement is not None:
            env.update(placement.env())
        env.update(step.environment(self.python))
        if self.threads:
            env.setdefault("OMP_NUM_THREADS", str(self.threads))
            env.setdefault("MKL_NUM_THREADS", str(self.threads))
        return env

    def _log_path(self, step: Step) -> Path | None:
        if self.log_dir is None or step.stream:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return self.log_dir / (step.id.replace(":", "__").replace("/", "__") + ".log")

    def _can_fork(self, argv: list[str]) -> bool:
        return self.mode == "fork" and argv[0] == self.python

    def _launch(self, argv: list[str], step: Step, log: Path | None) -> tuple[int, Any]:
        env = self._env(step)
        if self._can_fork(argv):
            return _fork_python(argv[1:], env, log, self.threads), None
        import subprocess

        handle = open(log, "w") if log else None
        try:
            popen = subprocess.Popen(argv, cwd=REPO, env=env, stdout=handle or None,
                                     stderr=subprocess.STDOUT if handle else None)
        finally:
            if handle:
                handle.close()
        return popen.pid, popen

    def preload(self) -> None:
        """Import the frameworks the plan's steps need, once, before forking (fork mode)."""
        if self.mode != "fork":
            return
        import importlib
        import warnings

        wanted = []
        for step in self.plan.steps:
            for module in PRELOAD.get(step.task or "", ()):
                if module not in wanted:
                    wanted.append(module)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for module in wanted:
                try:
                    importlib.import_module(module)
                except ImportError:
                    pass
        if wanted:
            print(f"[reproduce] frameworks imported once for the forked commands "
                  f"({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)

    # -- the loop
    def run(self) -> int:
        steps = {s.id: s for s in self.plan.steps}
        order = [s.id for s in self.plan.steps]
        pending = list(order)
        running: dict[int, _Running] = {}
        total = len(order)
        number = {sid: i for i, sid in enumerate(order, 1)}
        if any(not steps[sid].is_done() for sid in order):
            self.preload()
        while pending or running:
            launched = progressed = False
            for sid in list(pending):
                if len(running) >= self.jobs:
                    break
                step = steps[sid]
                states = [self.status.get(d) for d in step.deps]
                if any(s is None for s in states):
                    continue  # a dependency has not finished
                failed = [d for d, s in zip(step.deps, states) if s in ("failed", "skipped")]
                if failed and not step.soft_deps:
                    pending.remove(sid)
                    progressed = True
                    self.status[sid] = "skipped"
                    self._say(number[sid], total, f"skipped {step.title} (failed: {', '.join(failed)})")
                    continue
                if step.is_done():
                    pending.remove(sid)
                    progressed = True
                    self.status[sid] = "done"
                    self._say(number[sid], total, f"done already: {step.title}")
                    continue
                placement = None
                if self.slots is not None and step.gpus:
                    placement = self.slots.take(step.gpus, step.torchrun)
                    if placement is None:
                        continue  # waits for GPUs; a later step that fits may start meanwhile
                pending.remove(sid)
                progressed = True
                try:
                    argv = step.resolve(step) if step.resolve else step.argv
                except SuiteError as error:
                    if placement is not None:
                        self.slots.give_back(placement)
                    self.status[sid] = "failed"
                    self._say(number[sid], total, f"FAILED {step.title}: {error}")
                    continue
                argv = [self.python if a == PYTHON else a for a in argv]
                log = self._log_path(step)
                where = ""
                if placement is not None:
                    self.placements[sid] = placement
                    where = f" [GPU {','.join(placement.gpus)}" + \
                        (f", port {placement.port}]" if placement.port is not None else "]")
                self._say(number[sid], total, f"{step.title}{where}" +
                          (f"  (log: {_rel(log)})" if log else ""))
                pid, popen = self._launch(argv, step, log)
                running[pid] = _Running(step, pid, time.perf_counter(), log, popen, placement)
                launched = True
            if not running and not progressed:
                for sid in pending:  # dependencies that no step of the plan provides
                    self.status[sid] = "skipped"
                    self._say(number[sid], total, f"skipped {steps[sid].title} (unmet dependencies)")
                break
            if running and not launched:
                pid, status = os.waitpid(-1, 0)
                if pid not in running:
                    continue
                job = running.pop(pid)
                if job.placement is not None:
                    self.slots.give_back(job.placement)
                code = os.waitstatus_to_exitcode(status)
                if job.popen is not None:
                    job.popen.returncode = code
                elapsed = time.perf_counter() - job.start
                self.seconds[job.step.id] = elapsed
                sid = job.step.id
                if code == 0:
                    self.status[sid] = "ok"
                    self._say(number[sid], total, f"finished {job.step.title} ({elapsed:.0f} s)")
                else:
                    self.status[sid] = "failed"
                    self._say(number[sid], total, f"FAILED {job.step.title} (exit {code}, "
                              f"{elapsed:.0f} s)" + (f"; last lines of {_rel(job.log)}:" if job.log else ""))
                    if job.log:
                        tail = job.log.read_text(errors="replace").splitlines()[-25:]
                        print("\n".join("    " + line for line in tail), file=sys.stderr, flush=True)
        failed = [sid for sid, s in self.status.items() if s in ("failed", "skipped")]
        return 1 if failed else 0

    @staticmethod
    def _say(number: int, total: int, text: str) -> None:
        print(f"[reproduce {number}/{total}] {text}", file=sys.stderr, flush=True)


def _fork_python(args: list[str], env: Mapping[str, str], log: Path | None,
                 threads: int | None) -> int:
    """Run ``python ARGS`` (a script path or ``-m module``) in a forked child of this process,
    with the modules this process has imported; returns the child's pid."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        if log is not None:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)
        # write to the file descriptors (the parent's sys.stdout may be something else, e.g. a
        # test runner's capture)
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
        os.chdir(REPO)
        os.environ.clear()
        os.environ.update(env)
        import runpy

        if threads:
            import torch

            torch.set_num_threads(threads)
        if args[0] == "-m":
            sys.argv = [args[1], *args[2:]]
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        else:
            script = str(_abs(args[0]))
            sys.argv = [script, *args[1:]]
            sys.path.insert(0, str(Path(script).parent))
            runpy.run_path(script, run_name="__main__")
        code = 0
    except SystemExit as exit_:
        if exit_.code is None:
            code = 0
        elif isinstance(exit_.code, int):
            code = exit_.code
        else:
            print(exit_.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 -- report anything, then leave the child
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def run_suite(suite_path: str | Path, options: Options, *, dry_run: bool = False,
              executor: str | None = None, jobs: int | None = None, log_dir: str | None = None,
              threads: int | None = None, stream_report: bool = True) -> int:
    """Plan ``suite_path`` with ``options``; print the plan (``dry_run``) or execute it.
    Returns the exit status (0: every step done). ``stream_report=False`` sends the report's
    terminal output to its log file like the other commands' (the demo prints its own tables)."""
    suite = load_suite(suite_path, smoke=options.smoke)
    plan = build_plan(suite, options)
    if not stream_report:
        for step in plan.steps:
            step.stream = False
    run = suite.get("run", {})
    # with --gpus, as many commands at once as the node has GPUs (each GPU step holds its own)
    jobs = jobs or (options.gpus if options.gpus and options.launcher != "slurm"
                    else int(run.get("jobs", 1)))
    slots = _node_slots(options)
    missing = plan.missing_inputs()
    if dry_run:
        placements = {}
        if slots is not None:
            from .gpu_slots import simulate_placements

            placements = simulate_placements(plan.steps, slots, jobs, lambda s: s.is_done())
        print_plan(plan, placements=placements)
        if missing:
            print("\n# warning: " + missing_message(missing).replace("\n", "\n# "))
        return 0
    for note in plan.notes:
        print(f"[reproduce] note: {note}", file=sys.stderr)
    if missing:
        raise SuiteError(missing_message(missing))
    executor = executor or run.get("executor", "subprocess")
    if threads is None and jobs > 1:
        threads = int(run["threads"]) if run.get("threads") else max(1, (os.cpu_count() or 1) // jobs)
    if log_dir is None and jobs > 1:
        log_dir = str(plan.work_dir / "logs")
    start = time.perf_counter()
    print(f"[reproduce] suite {suite['name']}: {len(plan.steps)} steps, executor {executor}, "
          f"{jobs} at a time; work dir {_rel(plan.work_dir)}", file=sys.stderr, flush=True)
    code = Executor(plan, mode=executor, jobs=jobs, log_dir=Path(log_dir) if log_dir else None,
                    threads=threads, slots=slots).run()
    print(f"[reproduce] {'finished' if code == 0 else 'finished with failures'} in "
          f"{time.perf_counter() - start:.0f} s; report: {_rel(plan.report_dir)}",
          file=sys.stderr, flush=True)
    return code


def _node_slots(options: Options):
    """The node's GPUs and ports for the executor: with ``--gpus`` and a local launcher (none,
    pytorch); None otherwise (no --gpus: CUDA_VISIBLE_DEVICES is left alone; Slurm: srun
    allocates)."""
    if not options.gpus or options.launcher == "slurm":
        return None
    from .gpu_slots import GpuSlots, node_gpu_ids

    try:
        return GpuSlots(node_gpu_ids(options.gpus), options.base_port)
    except ValueError as error:
        raise SuiteError(str(error)) from None


# ----------------------------------------------------------------------------- command line


def add_reproduce_command(sub) -> None:
    """Register ``robust-transfer reproduce`` on the CLI's sub-parsers."""
    p = sub.add_parser(
        "reproduce", help="run a benchmark suite (configs/*.yaml): convert, train, evaluate, report",
        description="Reproduce a table of the paper from a benchmark suite: convert the published "
                    "ImageNet backbones, train every (task, backbone, transfer mode) with the "
                    "task's tool (or take trained checkpoints from --checkpoint-dir), evaluate "
                    "each on the corruption grid, and write the report. Rerunning skips finished "
                    "trainings and cells.")
    p.add_argument("suite", help="suite YAML (configs/fixed_feature.yaml, ...)")
    p.add_argument("--dry-run", action="store_true",
                   help="print every command (runnable, with its GPUs and port), then what is "
                        "missing; run nothing")
    p.add_argument("--smoke", action="store_true",
                   help="the suite's smoke section: synthetic data, stand-in backbones, tiny "
                        "configs, a small grid, on CPU")
    p.add_argument("--gpus", type=int, metavar="N",
                   help="GPUs of this node (ids: an inherited CUDA_VISIBLE_DEVICES, else 0..N-1). "
                        "Every training and evaluation takes free GPUs and runs with its own "
                        "CUDA_VISIBLE_DEVICES; one-GPU jobs (evaluations, CIFAR-10) run side by "
                        "side; --jobs defaults to N. With --launcher slurm: the GPUs of each "
                        "detection/segmentation training job. Default: not managed "
                        "(CUDA_VISIBLE_DEVICES untouched, --jobs alone sets the concurrency)")
    p.add_argument("--gpus-per-job", type=int, metavar="G",
                   help="GPUs of each detection/segmentation training (torchrun or srun; needs "
                        "--launcher pytorch|slurm). Default: all --gpus, as the recipes want. "
                        "Evaluations and CIFAR-10 jobs always take one GPU")
    p.add_argument("--launcher", default="none", choices=LAUNCHERS,
                   help="none: every command one process on one GPU; pytorch: detection/"
                        "segmentation trainings via torchrun over --gpus-per-job GPUs "
                        "(tools/dist_train.sh, each with its own master port); slurm: srun per "
                        "command (tools/slurm_*.sh, needs --partition)")
    p.add_argument("--partition", help="Slurm partition (--launcher slurm)")
    p.add_argument("--cpus-per-task", type=int, default=5,
                   help="Slurm: CPU cores per task, for data loading (default 5)")
    p.add_argument("--time", dest="time_limit", default="2-00:00:00",
                   help="Slurm: time limit of each srun job (default 2-00:00:00, two days: a "
                        "24-epoch Mask R-CNN on 8 V100s takes about one)")
    p.add_argument("--base-port", type=int, default=29500,
                   help="first torchrun master port; concurrent trainings get the next free "
                        "ones (default 29500)")
    p.add_argument("--work-dir", help="trainings, results, reports and logs (default: the suite's, "
                                      "work_dirs/reproduce; work_dirs/smoke with --smoke)")
    p.add_argument("--checkpoint-dir", help="take trained task checkpoints from here instead of "
                                            "training: DIR/<released file name> or "
                                            "DIR/<task>/<backbone>_<mode>.pth")
    p.add_argument("--backbone-dir", default="checkpoints/imagenet",
                   help="where the published ImageNet checkpoints are (default checkpoints/imagenet)")
    p.add_argument("--tasks", nargs="+", choices=TASKS, help="only these tasks")
    p.add_argument("--backbones", nargs="+", help="only these backbones")
    p.add_argument("--modes", nargs="+", choices=MODES, help="only these transfer modes")
    p.add_argument("--steps", nargs="+", choices=STEP_KINDS,
                   help="only these kinds of steps (e.g. 'convert train', then 'evaluate')")
    p.add_argument("--shard", metavar="I/N",
                   help="evaluate shard I of N of every grid (0-based; Slurm arrays, several "
                        "nodes); rerun without --shard to merge and report")
    p.add_argument("--eval-shards", type=int, default=1, metavar="K",
                   help="split each detection/segmentation grid into K one-GPU jobs (--shard i/K "
                        "of the robustness tool) that run side by side, then merge them "
                        "(e.g. --gpus 8 --eval-shards 8 for one model); ignored with --shard; "
                        "default 1")
    p.add_argument("--executor", choices=("subprocess", "fork"),
                   help="subprocess (default) or fork (import the frameworks once; CPU runs)")
    p.add_argument("--jobs", type=int, help="independent commands run at once (default 1)")
    p.add_argument("--threads", type=int, help="torch threads per command (default: cores / jobs "
                                               "when --jobs > 1)")
    p.add_argument("--log-dir", help="one log file per command here (default with --jobs > 1: "
                                     "<work dir>/logs)")
    p.set_defaults(func=_cmd_reproduce)


def _cmd_reproduce(args) -> int:
    options = Options(smoke=args.smoke, gpus=args.gpus, gpus_per_job=args.gpus_per_job,
                      launcher=args.launcher, partition=args.partition,
                      cpus_per_task=args.cpus_per_task, time_limit=args.time_limit,
                      base_port=args.base_port, work_dir=args.work_dir,
                      checkpoint_dir=args.checkpoint_dir, backbone_dir=args.backbone_dir,
                      tasks=args.tasks, backbones=args.backbones, modes=args.modes,
                      shard=args.shard, eval_shards=args.eval_shards, steps=args.steps)
    return run_suite(args.suite, options, dry_run=args.dry_run, executor=args.executor,
                     jobs=args.jobs, log_dir=args.log_dir, threads=args.threads)
