"""The study runner (robust_transfer/study/), the suites of configs/, the scripts of
scripts/ and the demo.

Fast: every script's --dry-run (real suites and their smoke sections) names only files that
exist, plans every (backbone, task, mode) and ends with the report; the launchers, GPU scaling,
--checkpoint-dir, --shard and idempotency of the planner; the executor's failure handling; the
suites agree on their shared backbones. Slow: `scripts/cifar10.sh --smoke` end to end (and its
rerun doing nothing), and the demo end to end at RT_DEMO_SCALE=ci.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from robust_transfer.study import PYTHON as PLAN_PYTHON
from robust_transfer.study import Options, Plan, Step, SuiteError, build_plan, load_suite, run_suite
from robust_transfer.study.executor import Executor

REPO = Path(__file__).resolve().parents[1]
SUITES = ("fixed_feature", "full_network", "prime", "cifar10", "adversarial")
SCRIPTS = SUITES + ("all",)
PYTHON = sys.executable


def _dry_run(script: str, *flags: str) -> str:
    result = subprocess.run(["bash", str(REPO / "scripts" / f"{script}.sh"), "--dry-run", *flags],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _commands(output: str) -> list[list[str]]:
    return [shlex.split(line) for line in output.splitlines() if line and not line.startswith("#")]


def _repo_files(argv: list[str]) -> list[str]:
    """Arguments that name a tool or a config of the repository."""
    return [a for a in argv if re.search(r"\.(py|sh)$", a) and not a.startswith("-")]


# ----------------------------------------------------------------------------- dry runs


@pytest.mark.parametrize("smoke", [False, True], ids=["real", "smoke"])
@pytest.mark.parametrize("script", SCRIPTS)
def test_dry_run_names_only_existing_configs_and_tools(script, smoke, tmp_path):
    flags = ["--work-dir", str(tmp_path / "work")] + (["--smoke"] if smoke else [])
    output = _dry_run(script, *flags)
    commands = _commands(output)
    assert commands, output
    named = {f for argv in commands for f in _repo_files(argv)}
    assert named, "no tool or config in the plan"
    missing = sorted(f for f in named if not (REPO / f).is_file())
    assert not missing, f"the plan names files that do not exist: {missing}"
    tools = {f for f in named if "/tools/" in f or f.endswith("main.py")}
    configs = named - tools
    if script != "cifar10":
        assert any(f.endswith("test_robustness.py") for f in tools)
        assert configs, "no task config in the plan"
    # one report per suite, after everything else of that suite
    reports = [i for i, argv in enumerate(commands) if argv[1:4] == ["-m", "robust_transfer.cli", "report"]]
    assert len(reports) == (len(SUITES) if script == "all" else 1)
    assert reports[-1] == len(commands) - 1


@pytest.mark.parametrize("suite_name", SUITES)
def test_plan_covers_every_backbone_task_and_mode(suite_name, tmp_path):
    suite = load_suite(REPO / "configs" / f"{suite_name}.yaml")
    plan = build_plan(suite, Options(work_dir=str(tmp_path)))
    ids = {s.id for s in plan.steps}
    for backbone in suite.backbones:
        for task in suite.tasks:
            for mode in suite.modes:
                assert f"train:{task}/{backbone}/{mode}" in ids
                assert f"evaluate:{task}/{backbone}/{mode}" in ids
            if task != "classification":
                assert f"convert:{task}/{backbone}" in ids
    for step in plan.steps:  # typed fields, consistent with the ids that name the steps
        if step.kind in ("train", "evaluate"):
            assert step.id.startswith(f"{step.kind}:{step.task}/{step.backbone}/{step.mode}")
        assert step.task in (None, *suite.tasks)
    report = plan.steps[-1]
    assert report.kind == "report" and report.task is None
    assert report.argv[report.argv.index("--imagenet-robustness") + 1] == f"configs/{suite_name}.yaml"
    # the evaluation settings of the suite reach every robustness tool
    for step in plan.steps:
        if step.kind == "evaluate" and step.task != "classification":
            argv = step.argv
            assert argv[argv.index("--corruptions") + 1] == "benchmark"
            assert argv[argv.index("--severities") + 1:argv.index("--severities") + 3] == \
                ["0", "1"] and argv[argv.index("--severities") + 3].startswith("-")
            assert "--resume" in argv and f"transfer.backbone={step.backbone}" in argv


def test_suites_record_the_studys_severity_and_the_flag_gives_the_full_benchmark(tmp_path):
    """The study used severity 1 ("we used severities=1"): every table suite records it, the
    demo keeps its 15 x 5 grid, and --severities 1 2 3 4 5 reaches every robustness tool."""
    for name in SUITES:
        assert load_suite(REPO / "configs" / f"{name}.yaml").evaluation.severities == [1], name
    assert load_suite(REPO / "configs" / "demo.yaml").evaluation.severities == [1, 2, 3, 4, 5]
    full = build_plan(load_suite(REPO / "configs" / "full_network.yaml"),
                      Options(work_dir=str(tmp_path), severities=[5, 1, 2, 3, 4]))
    evaluations = [s.argv for s in full.steps if s.kind == "evaluate"]
    assert evaluations
    for argv in evaluations:  # det/seg tools take the clean cell as severity 0, main.py not
        severities = argv[argv.index("--severities") + 1:]
        severities = severities[:next(i for i, a in enumerate(severities) if a.startswith("-"))]
        assert [s for s in severities if s != "0"] == ["1", "2", "3", "4", "5"]
    with pytest.raises(SuiteError, match="--severities 0 7: give one or more of 1 2 3 4 5"):
        build_plan(load_suite(REPO / "configs" / "cifar10.yaml"), Options(severities=[0, 7]))
    text = _dry_run("cifar10", "--severities", "1", "2", "3", "4", "5", "--work-dir", str(tmp_path))
    assert "--severities 1 2 3 4 5" in text


def test_dry_run_of_missing_published_checkpoints_is_a_warning_and_execution_refuses(tmp_path, capsys):
    code = run_suite(REPO / "configs" / "cifar10.yaml",
                     Options(work_dir=str(tmp_path), backbone_dir=str(tmp_path / "none"), dry_run=True))
    assert code == 0
    output = capsys.readouterr().out
    assert "# warning:" in output and str(tmp_path / "none" / "ANT_Model.pth") in output
    with pytest.raises(SuiteError, match="(?s)nothing was started.*ANT_Model.pth"):
        run_suite(REPO / "configs" / "cifar10.yaml",
                  Options(work_dir=str(tmp_path), backbone_dir=str(tmp_path / "none")))


# ----------------------------------------------------------------------------- the planner


def _plan(suite="full_network", **options) -> Plan:
    return build_plan(load_suite(REPO / "configs" / f"{suite}.yaml"), Options(**options))


def _step(plan: Plan, step_id: str) -> Step:
    return next(s for s in plan.steps if s.id == step_id)


def test_launchers_use_the_tasks_distributed_scripts(tmp_path):
    plan = _plan(work_dir=str(tmp_path), launcher="pytorch", gpus=4)
    det = _step(plan, "train:detection/ant/full-network")
    assert det.argv[:4] == ["bash", "mmdetection/tools/dist_train.sh",
                            "mmdetection/configs/mask_rcnn/mask_rcnn_r50_ant_fpn_2x_lr0.04_coco.py", "4"]
    assert "--auto-scale-lr" in det.argv  # lr 0.04 is for 8 GPUs x 2 images
    seg = _step(plan, "train:segmentation/ant/full-network")
    assert "train_dataloader.batch_size=4" not in seg.argv  # 4 GPUs is the recipe
    assert det.env["PYTHON"] == PLAN_PYTHON and det.gpus == 4 and det.torchrun
    test = _step(plan, "evaluate:detection/ant/full-network")  # one GPU per grid, side by side
    assert test.argv[:2] == [PLAN_PYTHON, "mmdetection/tools/test_robustness.py"]
    assert test.gpus == 1 and not test.torchrun
    plan = _plan(work_dir=str(tmp_path), launcher="pytorch", gpus=8, gpus_per_job=4)
    seg = _step(plan, "train:segmentation/ant/full-network")
    assert seg.argv[3] == "4" and seg.gpus == 4 and "train_dataloader.batch_size=4" not in seg.argv

    plan = _plan(work_dir=str(tmp_path), launcher="slurm", gpus=8, partition="gpu")
    det = _step(plan, "train:detection/ant/full-network")
    assert det.argv[:3] == ["bash", "mmdetection/tools/slurm_train.sh", "gpu"]
    assert det.env["GPUS"] == "8" and "--auto-scale-lr" not in det.argv and det.gpus == 0
    seg = _step(plan, "train:segmentation/ant/full-network")
    assert "train_dataloader.batch_size=2" in seg.argv  # keeps the recipe's 16 images
    cls = _step(plan, "train:classification/ant/full-network")
    assert cls.argv[:2] == ["srun", "-p"]
    with pytest.raises(SuiteError, match="--partition"):
        _plan(work_dir=str(tmp_path), launcher="slurm")


def test_recipes_of_the_classification_commands(tmp_path):
    plan = _plan("prime", work_dir=str(tmp_path))
    train = _step(plan, "train:classification/swin_t/full-network+prime").argv
    assert train[train.index("--arch") + 1] == "swin_t"
    assert train[train.index("--model-format") + 1] == "swin"
    assert train[train.index("--freeze-level") + 1] == "-1" and "--prime" in train
    for flag, value in (("--epochs", "150"), ("--lr", "0.01"), ("--step-lr", "30"),
                        ("--batch-size", "64"), ("--weight-decay", "0.0005")):
        assert train[train.index(flag) + 1] == value
    evaluate = _step(plan, "evaluate:classification/swin_t/full-network+prime").argv
    assert evaluate[:len(train)] == train  # the same recipe: the results' identity matches
    assert evaluate[evaluate.index("--cifar10c-dir") + 1] == "data/CIFAR-10-C"
    fixed = _step(_plan("fixed_feature", work_dir=str(tmp_path)),
                  "train:classification/ant/fixed-feature").argv
    assert fixed[fixed.index("--freeze-level") + 1] == "4"


def test_rerun_skips_finished_work_and_resumes_trainings(tmp_path):
    plan = _plan(work_dir=str(tmp_path), backbones=["ant"], tasks=["detection"])
    train = _step(plan, "train:detection/ant/full-network")
    evaluate = _step(plan, "evaluate:detection/ant/full-network")
    assert not train.is_done() and not evaluate.is_done() and "--resume" not in train.argv
    train_dir = tmp_path / "train" / "detection" / "ant" / "full-network"
    train_dir.mkdir(parents=True)
    (train_dir / "last_checkpoint").write_text(str(train_dir / "epoch_3.pth"))
    train = _step(_plan(work_dir=str(tmp_path), backbones=["ant"], tasks=["detection"]),
                  "train:detection/ant/full-network")
    assert "--resume" in train.argv and not train.is_done()
    (train_dir / "epoch_24.pth").write_bytes(b"")
    assert train.is_done()
    result = tmp_path / "results" / "detection" / "ant__full-network.json"
    result.parent.mkdir(parents=True)
    cells = {"clean": {"0": {"bbox_mAP": 0.3}}}
    result.write_text(json.dumps({"cells": cells}))
    assert not evaluate.is_done()  # 75 corrupted cells missing
    from robust_transfer.corruptions import get_corruption_names

    for name in get_corruption_names("benchmark"):
        cells[name] = {str(s): {"bbox_mAP": 0.1} for s in range(1, 6)}
    result.write_text(json.dumps({"cells": cells}))
    assert evaluate.is_done()


def test_checkpoint_dir_replaces_conversion_and_training(tmp_path):
    released = tmp_path / "released"
    (released / "segmentation").mkdir(parents=True)
    (released / "fixedfeature_cocodetect_ant_epoch_24.pth").write_bytes(b"")
    (released / "segmentation" / "ant_fixed-feature.pth").write_bytes(b"")
    plan = _plan("fixed_feature", work_dir=str(tmp_path / "w"), checkpoint_dir=str(released),
                 backbones=["ant"], tasks=["detection", "segmentation"])
    assert [s.kind for s in plan.steps] == ["evaluate", "evaluate", "report"]
    assert plan.steps[0].argv[3] == str(released / "fixedfeature_cocodetect_ant_epoch_24.pth")
    assert plan.steps[1].argv[3] == str(released / "segmentation" / "ant_fixed-feature.pth")
    assert not any("--checkpoint-dir" in m for m in plan.missing_inputs())
    plan = _plan("fixed_feature", work_dir=str(tmp_path / "w"), checkpoint_dir=str(released),
                 backbones=["regular", "swin_t"], tasks=["detection"])
    absent = [m for m in plan.missing_inputs() if "--checkpoint-dir" in m]
    assert absent == [f"trained detection model of '{b}' / fixed-feature (--checkpoint-dir): "
                      f"{released / 'detection' / (b + '_fixed-feature.pth')}" for b in ("regular", "swin_t")]


def test_shards_split_the_grids_and_a_later_run_merges(tmp_path):
    plan = _plan(work_dir=str(tmp_path), shard="2/4", backbones=["ant"],
                 tasks=["detection", "classification"], steps=["evaluate"])
    assert [s.id for s in plan.steps] == ["evaluate:detection/ant/full-network"]  # CIFAR: shard 1
    argv = plan.steps[0].argv
    assert argv[argv.index("--shard") + 1] == "2/4"
    assert any("merge the shard files" in n or "without --shard" in n for n in plan.notes)
    results = tmp_path / "results" / "detection"
    results.mkdir(parents=True)
    for i in range(4):
        (results / f"ant__full-network.shard{i}-of-4.json").write_text("{}")
    plan = _plan(work_dir=str(tmp_path), backbones=["ant"], tasks=["detection"])
    merge = _step(plan, "merge:detection/ant/full-network")
    assert merge.argv[1:4] == ["-m", "robust_transfer.cli", "merge"] and len(merge.argv) == 10
    assert merge.id in _step(plan, "evaluate:detection/ant/full-network").deps


def test_selection_and_suite_errors_name_the_problem(tmp_path):
    with pytest.raises(SuiteError, match="not in this suite"):
        _plan(work_dir=str(tmp_path), backbones=["l2_eps3"])
    bad = yaml.safe_load((REPO / "configs" / "cifar10.yaml").read_text())
    bad["tasks"] = ["detection"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(SuiteError, match="no detection config"):
        load_suite(path)
    bad["tasks"], bad["modes"] = ["classification"], ["frozen"]
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(SuiteError, match="unknown task/mode"):
        load_suite(path)
    bad["modes"] = ["full-network"]
    bad["backbones"]["ant"]["configs"] = {"detection": {"full-network": "mmdetection/configs/nope.py"}}
    bad["tasks"] = ["detection"]
    bad["backbones"] = {"ant": bad["backbones"]["ant"]}
    bad["backbones"]["ant"]["convert"] = {"detection": {"tool": "x.py", "output": "y.pth"}}
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(SuiteError, match="do not exist: .*nope.py"):
        build_plan(load_suite(path), Options(work_dir=str(tmp_path)))


# ----------------------------------------------------------------------------- the suites


def test_suites_agree_on_shared_backbones_and_cite_their_imagenet_numbers():
    from robust_transfer.report import load_imagenet_robustness

    seen: dict[str, dict] = {}
    for name in SUITES:
        raw = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
        values, metric = load_imagenet_robustness(REPO / "configs" / f"{name}.yaml")
        assert "mCE" in metric
        loaded = load_suite(REPO / "configs" / f"{name}.yaml").backbones
        for backbone, spec in raw["backbones"].items():
            assert spec.get("imagenet_robustness_source")
            assert ("imagenet_robustness" in spec) and (spec["imagenet_robustness"] is None) == \
                (backbone not in values)
            # arch, file, ... as loaded: the suites leave them to the backbone catalogue
            shared = {k: getattr(loaded[backbone], k) for k in ("arch", "format", "checkpoint",
                                                                 "url", "label")}
            shared["imagenet_robustness"] = spec["imagenet_robustness"]
            assert seen.setdefault(backbone, shared) == shared, backbone
            for convert in loaded[backbone].convert.values():
                assert (REPO / convert["tool"]).is_file()
        assert "smoke" in raw and raw["smoke"]["synthetic"]
    assert seen["regular"]["imagenet_robustness"] == 76.7


# ----------------------------------------------------------------------------- the executor


def _script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(body)
    return str(path)


@pytest.mark.parametrize("mode", ["subprocess", "fork"])
def test_executor_skips_dependants_of_a_failure_and_runs_the_rest(tmp_path, mode):
    marker = tmp_path / "ran"
    ok = _script(tmp_path, "ok", f"import sys; open({str(marker)!r}, 'a').write(sys.argv[1] + '\\n')")
    fail = _script(tmp_path, "fail", "import sys; print('boom'); sys.exit(3)")
    steps = [Step("a", "train", "fails", [PLAN_PYTHON, fail]),
             Step("b", "evaluate", "needs a", [PLAN_PYTHON, ok, "b"], deps=["a"]),
             Step("c", "train", "independent", [PLAN_PYTHON, ok, "c"]),
             Step("d", "evaluate", "already done", [PLAN_PYTHON, ok, "d"], done=lambda: True),
             Step("r", "report", "soft", [PLAN_PYTHON, ok, "r"], deps=["b", "c"], soft_deps=True)]
    plan = Plan(None, steps, tmp_path, tmp_path)
    executor = Executor(plan, mode=mode, jobs=2, log_dir=tmp_path / "logs")
    assert executor.run() == 1
    assert sorted(marker.read_text().split()) == ["c", "r"]
    assert executor.status == {"a": "failed", "b": "skipped", "c": "ok", "d": "done", "r": "ok"}
    assert "boom" in (tmp_path / "logs" / "a.log").read_text()


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_cifar10_smoke_end_to_end_and_rerun_does_nothing(tmp_path):
    work = tmp_path / "smoke"
    run = subprocess.run(["bash", str(REPO / "scripts" / "cifar10.sh"), "--smoke",
                          "--work-dir", str(work), "--backbones", "regular", "ant"],
                         cwd=REPO, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    report = work / "reports" / "cifar10"
    for name in ("summary.md", "summary.tex", "summary.csv", "transfer_correlation.md"):
        assert (report / name).is_file(), name
    assert list((report / "plots").glob("scatter_classification_top1_*.png"))
    rows = (report / "summary.csv").read_text().splitlines()
    assert len(rows) == 1 + 4  # 2 backbones x 2 modes
    for backbone in ("regular", "ant"):
        for mode in ("fixed-feature", "full-network"):
            results = json.loads((work / "results" / "classification" / f"{backbone}__{mode}.json").read_text())
            assert results["backbone"] == backbone and results["transfer_mode"] == mode
            assert len(results["cells"]) == 5 and all(len(v) == 3 for k, v in results["cells"].items()
                                                      if k != "clean")
    again = subprocess.run(["bash", str(REPO / "scripts" / "cifar10.sh"), "--smoke",
                            "--work-dir", str(work), "--backbones", "regular", "ant"],
                           cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    launched = [line for line in again.stderr.splitlines()
                if re.match(r"\[reproduce \d+/\d+\] (train|robustness|stand-in|convert)", line)]
    assert not launched, launched  # only the robustness table and the report run again
    shutil.rmtree(work)


@pytest.mark.slow
def test_demo_end_to_end_at_ci_scale(tmp_path):
    out = tmp_path / "demo"
    env = {**os.environ, "RT_DEMO_SCALE": "ci"}
    run = subprocess.run([PYTHON, "-m", "robust_transfer.cli", "demo", "--out", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=1800, env=env)
    assert run.returncode == 0, run.stderr[-4000:] + run.stdout[-2000:]
    assert "fixed-feature transfer" in run.stdout and "full-network transfer" in run.stdout
    assert "does pre-training robustness transfer?" in run.stdout
    assert str((out / "report").resolve()) in run.stdout
    report = out / "report"
    for name in ("summary.md", "summary.tex", "summary.csv", "long.csv", "transfer_correlation.md"):
        assert (report / name).is_file(), name
    assert len(list((report / "plots").glob("*.png"))) >= 6
    from robust_transfer.corruptions import get_corruption_names

    files = sorted((out / "work" / "results").glob("*/*.json"))
    assert len(files) == 12  # 2 backbones x 2 modes x 3 tasks
    for path in files:
        results = json.loads(path.read_text())
        assert set(results["cells"]) == {"clean", *get_corruption_names("benchmark")}
        assert all(len(by_severity) == 5 for c, by_severity in results["cells"].items() if c != "clean")
        assert results["backbone"] in ("plain", "noise_aug")
    table = json.loads((out / "work" / "standins" / "robustness_demo.json").read_text())
    assert set(table["values"]) == {"plain", "noise_aug"}
    shutil.rmtree(out / "work")  # ~1 GB of ResNet-18 checkpoints


# ----------------------------------------------------------------------------- the study package


def test_steps_are_typed_and_reject_what_is_not_a_kind_or_task():
    with pytest.raises(ValueError, match="step kind 'build'"):
        Step("x", "build", "x", ["x"])
    with pytest.raises(ValueError, match="step task 'prepare'"):
        Step("x", "prepare", "x", ["x"], task="prepare")


def test_suite_is_typed_and_names_an_unknown_setting(tmp_path):
    suite = load_suite(REPO / "configs" / "full_network.yaml")
    assert suite.settings("segmentation").recipe_batch == 16
    assert suite.settings("detection").final_checkpoint == "epoch_24.pth"
    smoke = load_suite(REPO / "configs" / "full_network.yaml", smoke=True)
    assert smoke.synthetic.scale == "ci" and smoke.imagenet_metric is None
    assert smoke.settings("detection").recipe_gpus == 8  # the smoke section extends the suite's
    assert {b.arch for b in smoke.backbones.values()} == {"resnet18"}
    raw = yaml.safe_load((REPO / "configs" / "cifar10.yaml").read_text())
    raw["task_settings"]["classification"]["epochz"] = 3
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SuiteError, match="task_settings: classification: unknown key.*epochz"):
        load_suite(path)
    del raw["task_settings"]["classification"]["epochz"]
    raw["evaluation"]["backend"] = "jax"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SuiteError, match="backend must be one of numpy, torch, auto"):
        load_suite(path)


def test_backend_auto_reaches_the_robustness_tools_and_main_py_gets_numpy(tmp_path):
    suite = load_suite(REPO / "configs" / "full_network.yaml")
    assert suite.evaluation.backend == "auto"
    suite.data.cifar10c = None  # on-the-fly CIFAR-10 corruptions: main.py's backend flag
    plan = build_plan(suite, Options(work_dir=str(tmp_path), backbones=["ant"]))
    for step in (s for s in plan.steps if s.kind == "evaluate"):
        flag = "--corruption-backend" if step.task == "classification" else "--backend"
        assert step.argv[step.argv.index(flag) + 1] == \
            ("numpy" if step.task == "classification" else "auto"), step.id


def test_the_demo_reads_where_the_planner_writes(tmp_path, monkeypatch):
    from robust_transfer.demo import DEMO_SUITE, demo_layout

    out = tmp_path / "demo"
    layout = demo_layout(out)
    monkeypatch.setenv("RT_DEMO_SCALE", "ci")  # the demo's switch; the planner ignores it
    plan = build_plan(load_suite(DEMO_SUITE), Options(work_dir=str(layout.root),
                                                      report_dir=str(layout.report_dir),
                                                      data_scale="ci"))
    assert plan.report_dir == out / "report"
    data = next(s for s in plan.steps if s.kind == "prepare" and s.backbone is None)
    assert data.argv[-2:] == ["--scale", "ci"]
    results = [s.makes[0] for s in plan.steps if s.kind == "evaluate"]
    assert len(results) == 12 and all(r.parent.parent == layout.results_dir for r in results)
    table = next(s for s in plan.steps if s.id == "report:demo/imagenet-robustness")
    assert table.argv[4] == str(layout.robustness_table("demo"))
    for path in results[:2]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    (results[0].parent / f"{results[0].stem}.shard0-of-2.json").write_text("{}")
    assert layout.results_files() == sorted(results[:2])
    default = build_plan(load_suite(DEMO_SUITE), Options(work_dir=str(layout.root)))
    assert next(s for s in default.steps if s.id == "prepare:data").argv[-1] == "demo"
