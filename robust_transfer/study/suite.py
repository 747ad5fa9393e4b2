"""A benchmark suite (``configs/*.yaml``) as typed dataclasses, validated on load.

A suite names its tasks, transfer modes, backbones (published checkpoints, or stand-ins the plan
pre-trains itself), the corruption grid, where its data sets are, per-task settings and how its
commands run. Its ``smoke:`` section is an overlay: the same backbones, tasks and modes on
synthetic data, with stand-in backbones in each published checkpoint's layout and tiny configs.
Every problem is a :class:`SuiteError` naming the file and the entry.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

TASKS = ("detection", "segmentation", "classification")
MODES = ("fixed-feature", "full-network", "full-network+prime")
#: Corruption backends of ``evaluation: backend``; auto: the detection/segmentation tools pick
#: torch + batch for a model on CUDA and numpy + pipeline elsewhere, CIFAR-10's main.py numpy.
BACKENDS = ("numpy", "torch", "auto")
#: The architecture of every stand-in backbone (robust_transfer.standins).
STANDIN_ARCH = "resnet18"


class SuiteError(ValueError):
    """A benchmark suite that cannot be planned (names what is wrong)."""


@dataclass
class Evaluation:
    """The corruption grid every model of the suite is evaluated on, and how."""

    corruptions: str | list[str]
    severities: list[int]  # 1..5; the clean cell is always evaluated
    seed: int = 0
    backend: str = "numpy"  # numpy | torch | auto (the robustness tools choose per device)
    aggregate: str = "benchmark"
    corrupt_on: str | None = None

    def cells(self) -> list[tuple[str, int]]:
        """(corruption, severity) of every cell, the clean one first."""
        from ..corruptions import resolve_corruptions

        names = resolve_corruptions(self.corruptions)
        return [("clean", 0)] + [(c, s) for c in names for s in self.severities]

    def corruption_args(self) -> list[str]:
        """The corruptions as command-line words (a group name or the names)."""
        value = self.corruptions
        return [value] if isinstance(value, str) else [str(v) for v in value]


@dataclass
class TaskSettings:
    """A task's settings of the suite (``task_settings: <task>:``)."""

    configs: dict[str, str] = field(default_factory=dict)  # mode -> config (unless per backbone)
    final_checkpoint: str = "latest.pth"  # what a finished OpenMMLab training leaves
    recipe_gpus: int | None = None  # GPUs the recipe's learning rate / batch is for
    recipe_batch: int | None = None  # total batch of the recipe (segmentation)
    cfg_options: list[str] = field(default_factory=list)  # --cfg-options of the training
    eval_cfg_options: list[str] = field(default_factory=list)  # ... of the robustness tool
    dataset: str = "cifar10"  # main.py --dataset
    args: dict[str, Any] = field(default_factory=dict)  # main.py's recipe flags
    eval_images: int | None = None  # main.py --eval-subset


@dataclass
class Backbone:
    """One ImageNet backbone: a published checkpoint, or a stand-in the plan pre-trains."""

    name: str
    arch: str
    format: str  # layout of the ImageNet checkpoint (robust_transfer.backbones.SUPPORTED_FORMATS)
    checkpoint: str | None = None  # file name in --backbone-dir (published ones)
    label: str | None = None
    url: str | None = None
    source: str | None = None
    configs: dict[str, dict[str, str]] = field(default_factory=dict)  # task -> mode -> config
    convert: dict[str, dict] = field(default_factory=dict)  # task -> {tool, output, args}
    released: dict[str, dict[str, str]] = field(default_factory=dict)  # task -> mode -> file
    standin: dict[str, Any] | None = None  # pre-training of a stand-in (layout, augment, ...)
    smoke_standin: dict[str, Any] = field(default_factory=dict)  # its stand-in under --smoke
    registered: bool = False  # arch, checkpoint, format, sha256, label: from the backbones_file
    sha256: str | None = None  # of the registered checkpoint (backbone convert refuses others)


@dataclass
class DataPaths:
    """Where the real data sets are (``data:``), relative to the repository root or absolute."""

    coco: str = "data/coco"
    ade20k: str = "data/ade/ADEChallengeData2016"
    cifar10: str = "data/cifar10"
    cifar10c: str | None = None


@dataclass
class Synthetic:
    """Synthetic data and stand-in pre-training (the demo, ``--smoke``)."""

    scale: str = "ci"  # robust_transfer.standins.DATA_SCALES
    standin: dict[str, Any] = field(default_factory=dict)  # defaults of every stand-in


@dataclass
class RunSettings:
    """How the suite's commands run unless the command line says otherwise (``run:``)."""

    executor: str = "subprocess"
    jobs: int = 1
    threads: int | None = None


@dataclass
class Suite:
    """A validated benchmark suite."""

    path: Path
    name: str
    title: str
    tasks: list[str]
    modes: list[str]
    evaluation: Evaluation
    backbones: dict[str, Backbone]
    task_settings: dict[str, TaskSettings] = field(default_factory=dict)
    data: DataPaths = field(default_factory=DataPaths)
    synthetic: Synthetic | None = None
    work_dir: str = "work_dirs/reproduce"
    run: RunSettings = field(default_factory=RunSettings)
    imagenet_metric: str | None = "ImageNet robustness"
    backbones_file: Path | None = None  # user registrations (robust-transfer backbone add)
    imagenet_robustness_file: Path | None = None  # x-axis numbers of backbones the suite has none for

    def settings(self, task: str) -> TaskSettings:
        """The suite's settings of ``task`` (defaults where it has none)."""
        return self.task_settings.get(task) or TaskSettings()

    def config(self, backbone: str, task: str, mode: str) -> str | None:
        """The task config of ``backbone`` in ``mode``: its own, else the task's."""
        return self.backbones[backbone].configs.get(task, {}).get(mode) or \
            self.settings(task).configs.get(mode)


# ----------------------------------------------------------------------------- loading


def load_suite(path: str | Path, *, smoke: bool = False) -> Suite:
    """Read and validate a suite; with ``smoke``, apply its ``smoke:`` section (synthetic data,
    stand-in backbones, the tiny configs)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"no suite file {path}")
    raw = yaml.safe_load(path.read_text())
    if not isinstance(raw, dict):
        raise SuiteError(f"{path}: expected a mapping at the top level")
    suite = _suite(raw, path)
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


def _typed(kind, values: Mapping | None, where: str):
    """``kind(**values)``, naming an unknown key instead of a TypeError."""
    values = dict(values or {})
    known = set(kind.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise SuiteError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: "
                         f"{', '.join(sorted(known))}")
    return kind(**values)


def _suite(raw: dict, path: Path) -> Suite:
    where = str(path)
    tasks = list(_need(raw, "tasks", where, list))
    modes = list(_need(raw, "modes", where, list))
    bad = [t for t in tasks if t not in TASKS] + [m for m in modes if m not in MODES]
    if bad:
        raise SuiteError(f"{where}: unknown task/mode {bad}; tasks: {', '.join(TASKS)}; "
                         f"modes: {', '.join(MODES)}")
    evaluation = _evaluation(_need(raw, "evaluation", where, dict), where)
    if not _need(raw, "backbones", where, dict):
        raise SuiteError(f"{where}: no backbones")
    suite = Suite(
        path=path, name=raw.get("suite", path.stem), title=raw.get("title", path.stem),
        tasks=tasks, modes=modes, evaluation=evaluation, backbones={},
        task_settings=_task_settings(raw.get("task_settings"), where),
        data=_typed(DataPaths, raw.get("data"), f"{where}: data"),
        synthetic=_typed(Synthetic, raw["synthetic"], f"{where}: synthetic")
        if raw.get("synthetic") else None,
        work_dir=raw.get("work_dir", "work_dirs/reproduce"),
        run=_typed(RunSettings, raw.get("run"), f"{where}: run"),
        imagenet_metric=raw.get("imagenet_metric", "ImageNet robustness"),
        backbones_file=_beside(path, raw.get("backbones_file"), "backbones_file"),
        imagenet_robustness_file=_beside(path, raw.get("imagenet_robustness_file"),
                                         "imagenet_robustness_file"))
    registered = _registered_backbones(suite, raw["backbones"])
    for name, spec in raw["backbones"].items():
        if name in registered:
            spec = {**{k: v for k, v in registered[name].items() if v is not None}, **spec}
        suite.backbones[name] = _backbone(name, spec, suite, where)
    return suite


def _beside(suite_path: Path, value, key: str) -> Path | None:
    """A file named by the suite, relative to the suite file's folder (or absolute)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise SuiteError(f"{suite_path}: '{key}' must be a file path")
    path = Path(value).expanduser()
    return path if path.is_absolute() else (suite_path.parent / path).resolve()


def _registered_backbones(suite: Suite, specs: Mapping) -> dict[str, dict]:
    """{id: arch, checkpoint, format, sha256, label} of the backbones marked ``registered:
    true``, from the suite's ``backbones_file`` (registered in the catalogue on the way)."""
    wanted = [n for n, s in specs.items() if isinstance(s, dict) and s.get("registered")]
    if not wanted:
        return {}
    if suite.backbones_file is None:
        raise SuiteError(f"{suite.path}: backbone(s) {', '.join(wanted)} are 'registered: true' "
                         "but the suite names no backbones_file")
    from ..backbones.catalogue import load_user_backbones

    try:
        entries = {b.id: b for b in load_user_backbones(suite.backbones_file)}
    except ValueError as error:
        raise SuiteError(f"{suite.path}: backbones_file: {error}") from None
    unknown = [n for n in wanted if n not in entries]
    if unknown:
        raise SuiteError(f"{suite.path}: backbone(s) {', '.join(unknown)} are not in "
                         f"{suite.backbones_file} (it has: {', '.join(entries) or 'none'})")
    return {n: {"arch": entries[n].arch, "checkpoint": entries[n].checkpoint,
                "format": entries[n].format, "sha256": entries[n].sha256,
                "label": entries[n].label} for n in wanted}


def _task_settings(raw: Mapping | None, where: str) -> dict[str, TaskSettings]:
    return {task: _typed(TaskSettings, spec, f"{where}: task_settings: {task}")
            for task, spec in (raw or {}).items()}


def _backbone(name: str, spec, suite: Suite, where: str) -> Backbone:
    from ..standins import LAYOUTS

    if not isinstance(spec, dict):
        raise SuiteError(f"{where}: backbone {name!r} must be a mapping")
    bwhere = f"{where}: backbone {name!r}"
    if "standin" not in spec and not spec.get("registered"):
        spec = _with_catalogue_facts(name, spec, suite.tasks, bwhere)
    fields = {k: spec[k] for k in Backbone.__dataclass_fields__ if k in spec and k != "name"}
    if "standin" in spec:  # a backbone pre-trained by the plan itself (the demo)
        standin = {"layout": "torchvision", **(spec["standin"] or {})}
        if standin["layout"] not in LAYOUTS:
            raise SuiteError(f"{bwhere}: stand-in layout must be one of {', '.join(LAYOUTS)}")
        if suite.synthetic is None:
            raise SuiteError(f"{bwhere}: stand-in backbones need a 'synthetic:' suite")
        fields.update(arch=STANDIN_ARCH, format=standin["layout"], standin=standin)
    else:
        for key in ("arch", "format", "checkpoint"):
            _need(spec, key, bwhere)
    backbone = Backbone(name=name, **{k: v for k, v in fields.items() if v is not None})
    suite.backbones[name] = backbone
    for task in suite.tasks:
        if task == "classification":
            continue  # main.py needs no config file
        for mode in suite.modes:
            if not suite.config(name, task, mode):
                raise SuiteError(f"{bwhere}: no {task} config for mode {mode!r}")
    return backbone


#: The facts a suite's backbone entry takes from the catalogue unless it gives them itself.
_CATALOGUE_FIELDS = ("arch", "format", "checkpoint", "url", "label", "source", "sha256")


def _with_catalogue_facts(name: str, spec: Mapping, tasks: list[str], bwhere: str) -> dict:
    """``spec`` with what it leaves out filled from the backbone catalogue: the entry of its
    ``catalogue:`` id, else of the suite's key. The suite then says only what is its own
    (configs, released models, ImageNet numbers); what it does give wins over the catalogue."""
    from ..backbones.catalogue import MMSEG_CONVERTER, get_backbone, list_backbones

    catalogue_id = spec.get("catalogue", name)
    if "catalogue" not in spec and name not in list_backbones() and \
            all(spec.get(key) for key in ("arch", "format", "checkpoint")):
        return dict(spec)  # a backbone described in full by the suite itself
    try:
        entry = get_backbone(catalogue_id)
    except ValueError as error:
        raise SuiteError(f"{bwhere}: {error}") from None
    filled = {key: getattr(entry, key) for key in _CATALOGUE_FIELDS if getattr(entry, key) is not None}
    filled.update({k: v for k, v in spec.items() if k != "catalogue"})
    # Converters only for the suite's tasks: a CIFAR-10-only suite converts nothing.
    converters = {"detection": {"tool": entry.mmdet_converter, "output": entry.mmdet_path},
                  "segmentation": {"tool": MMSEG_CONVERTER, "args": ["--backbone", entry.id],
                                   "output": entry.mmseg_path}}
    convert = dict(spec.get("convert") or {})
    for task, converter in converters.items():
        if task in tasks and task not in convert and converter["output"]:
            convert[task] = converter
    if convert:
        filled["convert"] = convert
    return filled


def _evaluation(raw: Mapping, where: str) -> Evaluation:
    from ..corruptions import resolve_corruptions
    from ..grid import parse_severities

    for key in ("corruptions", "severities"):
        _need(raw, key, f"{where}: evaluation")
    evaluation = _typed(Evaluation, raw, f"{where}: evaluation")
    try:
        resolve_corruptions(evaluation.corruptions)
        severities = parse_severities(evaluation.severities)
    except ValueError as error:
        raise SuiteError(f"{where}: evaluation: {error}") from None
    evaluation.severities = [s for s in severities if s > 0]
    if evaluation.backend not in BACKENDS:
        raise SuiteError(f"{where}: evaluation: backend must be one of {', '.join(BACKENDS)}")
    if evaluation.corrupt_on not in (None, "pipeline", "batch"):
        raise SuiteError(f"{where}: evaluation: corrupt_on must be pipeline or batch")
    if evaluation.corrupt_on == "batch" and evaluation.backend == "numpy":
        raise SuiteError(f"{where}: evaluation: corrupt_on: batch needs backend: torch")
    return evaluation


def _apply_smoke(suite: Suite, smoke: dict, path: Path) -> Suite:
    """The suite's ``smoke:`` section: same backbones, tasks and modes, on synthetic data with
    stand-in backbones (in each published checkpoint's layout) and the tiny configs."""
    from ..standins import LAYOUTS

    where = f"{path}: smoke"
    overlay = {task: {**_settings_dict(suite.settings(task)), **spec}
               for task, spec in (smoke.get("task_settings") or {}).items()}
    out = Suite(
        path=suite.path, name=suite.name, title=suite.title, tasks=suite.tasks,
        modes=suite.modes, backbones={},
        synthetic=_typed(Synthetic, _need(smoke, "synthetic", where, dict), f"{where}: synthetic"),
        evaluation=_evaluation(smoke["evaluation"], where) if smoke.get("evaluation")
        else suite.evaluation,
        task_settings=_task_settings(overlay, where), data=suite.data,
        work_dir=smoke.get("work_dir", "work_dirs/smoke"),
        run=_typed(RunSettings, {**vars(suite.run), **(smoke.get("run") or {})}, f"{where}: run"),
        imagenet_metric=None,  # measured on the stand-ins
        backbones_file=suite.backbones_file, imagenet_robustness_file=suite.imagenet_robustness_file)
    for task in suite.tasks:
        for mode in suite.modes:
            if task != "classification" and not out.settings(task).configs.get(mode):
                raise SuiteError(f"{where}: no {task} config for mode {mode!r} "
                                 f"(task_settings: {task}: configs:)")
    standin = dict(smoke.get("standin") or {})
    for name, backbone in suite.backbones.items():
        if backbone.registered:  # the user's own file, converted as in the real run
            out.backbones[name] = backbone
            continue
        layout = backbone.format if backbone.format in LAYOUTS else "torchvision"
        out.backbones[name] = Backbone(
            name=name, label=backbone.label or name, arch=STANDIN_ARCH, format=layout,
            standin={"layout": layout, **standin, **backbone.smoke_standin})
    return out


def _settings_dict(settings: TaskSettings) -> dict:
    """The settings a suite wrote (defaults left out), for the smoke overlay to extend."""
    default = TaskSettings()
    return {k: v for k, v in vars(settings).items() if v != getattr(default, k)}

