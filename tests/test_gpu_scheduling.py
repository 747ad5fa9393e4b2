"""A node's GPUs in parallel (robust_transfer/study/gpu_slots.py and the study executor) and the
plan's preflight and real data paths (robust_transfer/study/).

Runs on CPU: the "GPU" commands are small Python scripts that record the CUDA_VISIBLE_DEVICES
and PORT they were started with, and hold a lock file per GPU id and per port while they run,
so two running commands that share a GPU or a port are caught in the act.
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from robust_transfer import cli
from robust_transfer.study import PYTHON as PLAN_PYTHON
from robust_transfer.study import Options, Plan, Step, SuiteError, build_plan, load_suite, run_suite
from robust_transfer.study.executor import Executor
from robust_transfer.study.gpu_slots import GpuSlots, Placement, node_gpu_ids, simulate_placements

REPO = Path(__file__).resolve().parents[1]

# records its placement; holds lock files for its GPUs and port while it runs
RECORDER = r"""
import json, os, sys, time
name, locks, out = sys.argv[1], sys.argv[2], sys.argv[3]
gpus = [g for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g]
port = os.environ.get("PORT")
held, clash = [], []
for key in [f"gpu{g}" for g in gpus] + ([f"port{port}"] if port else []):
    try:
        os.close(os.open(os.path.join(locks, key), os.O_CREAT | os.O_EXCL))
        held.append(key)
    except FileExistsError:
        clash.append(key)
start = time.time()
time.sleep(float(sys.argv[4]))
end = time.time()
for key in held:
    os.remove(os.path.join(locks, key))
with open(out, "a") as f:
    f.write(json.dumps({"name": name, "gpus": gpus, "port": port, "clash": clash,
                        "start": start, "end": end}) + "\n")
"""


def _recorder_steps(tmp_path: Path, specs, seconds: float = 1.5) -> list[Step]:
    script = tmp_path / "record.py"
    script.write_text(RECORDER)
    locks = tmp_path / "locks"
    locks.mkdir()
    out = tmp_path / "placements.jsonl"
    return [Step(name, kind, name, [PLAN_PYTHON, str(script), name, str(locks), str(out),
                                    str(seconds)], gpus=gpus, torchrun=torchrun)
            for name, kind, gpus, torchrun in specs]


def _records(tmp_path: Path) -> dict[str, dict]:
    lines = (tmp_path / "placements.jsonl").read_text().splitlines()
    return {r["name"]: r for r in map(json.loads, lines)}


def test_executor_gives_concurrent_steps_distinct_gpus_and_ports(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    specs = [(f"eval{i}", "evaluate", 1, False) for i in range(5)] + \
        [("ddp_a", "train", 2, True), ("ddp_b", "train", 2, True), ("convert", "convert", 0, False)]
    steps = _recorder_steps(tmp_path, specs)
    plan = Plan(None, steps, tmp_path, tmp_path)
    slots = GpuSlots(node_gpu_ids(4, {}))
    executor = Executor(plan, mode="subprocess", jobs=4, log_dir=tmp_path / "logs",
                                  slots=slots)
    assert executor.run() == 0
    records = _records(tmp_path)
    assert set(records) == {name for name, *_ in specs}
    for name, _, gpus, torchrun in specs:
        record = records[name]
        assert not record["clash"], f"{name} shared {record['clash']} with a running step"
        assert len(record["gpus"]) == gpus and set(record["gpus"]) <= {"0", "1", "2", "3"}
        assert (record["port"] is not None) == torchrun
        assert executor.placements.get(name, Placement()).gpus == tuple(record["gpus"])
    # they really ran side by side: some steps overlapped in time, and on different GPUs
    overlapping = [(a, b) for a in records.values() for b in records.values()
                   if a["name"] < b["name"] and a["gpus"] and b["gpus"]
                   and a["start"] < b["end"] and b["start"] < a["end"]]
    assert overlapping
    for a, b in overlapping:
        assert not set(a["gpus"]) & set(b["gpus"]), (a, b)
        if a["port"] and b["port"]:
            assert a["port"] != b["port"], (a, b)
    # every GPU was given back: a new step could take all four
    assert slots.take(4) == Placement(("0", "1", "2", "3"))


def test_slots_hand_out_free_gpus_and_ports_only():
    slots = GpuSlots(["0", "1", "2", "3"], base_port=29600)
    first = slots.take(2, torchrun=True)
    second = slots.take(2, torchrun=True)
    assert first == Placement(("0", "1"), 29600) and second == Placement(("2", "3"), 29601)
    assert slots.take(1) is None  # all busy: the step waits
    slots.give_back(first)
    assert slots.take(1) == Placement(("0",))
    assert slots.take(1, torchrun=True) == Placement(("1",), 29600)  # the freed port again
    assert second.env() == {"CUDA_VISIBLE_DEVICES": "2,3", "PORT": "29601"}
    with pytest.raises(ValueError, match="needs 5 GPUs; the node has 4"):
        slots.take(5)


def test_node_gpu_ids_follow_an_inherited_cuda_visible_devices():
    assert node_gpu_ids(3, {}) == ["0", "1", "2"]
    assert node_gpu_ids(2, {"CUDA_VISIBLE_DEVICES": "4,5,6"}) == ["4", "5"]
    with pytest.raises(ValueError, match="grants only 1"):
        node_gpu_ids(2, {"CUDA_VISIBLE_DEVICES": "7"})
    with pytest.raises(ValueError, match=">= 1"):
        node_gpu_ids(0, {})


def test_simulated_placements_never_overlap_on_a_gpu():
    steps = [Step(f"s{i}", "evaluate", f"s{i}", ["x"], gpus=g, torchrun=g > 1,
                  deps=[f"s{i - 1}"] if i == 5 else [])
             for i, g in enumerate([1, 2, 1, 1, 4, 1, 2, 2])]
    placed = simulate_placements(steps, GpuSlots(["0", "1", "2", "3"]), 8, lambda s: False)
    assert set(placed) == {s.id for s in steps}
    assert placed["s0"].gpus == ("0",) and placed["s1"] == Placement(("1", "2"), 29500)
    assert placed["s4"].gpus == ("0", "1", "2", "3")  # waited until the node was free
    assert placed["s6"].port != placed["s7"].port  # two 2-GPU torchrun jobs at once


# ----------------------------------------------------------------------------- dry run


def test_dry_run_prints_runnable_commands_with_their_gpus_and_ports(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    options = Options(work_dir=str(tmp_path), gpus=8, gpus_per_job=4, launcher="pytorch",
                      dry_run=True)
    assert run_suite(REPO / "configs" / "full_network.yaml", options) == 0
    output = capsys.readouterr().out
    assert "{" not in output and "}" not in output  # every placeholder filled in
    commands = {}
    title = None
    for line in output.splitlines():
        if line.startswith("# ["):
            title = line
        elif line and not line.startswith("#"):
            commands[title] = shlex.split(line)
    ports = []
    for title, argv in commands.items():
        env = dict(a.split("=", 1) for a in argv if "=" in a and a.split("=", 1)[0].isupper())
        if "PYTHON" in env:
            assert Path(REPO / env["PYTHON"]).exists() or Path(env["PYTHON"]).exists()
        if " train detection" in title or " train segmentation" in title:
            assert len(env["CUDA_VISIBLE_DEVICES"].split(",")) == 4
            assert argv[argv.index("bash") + 3] == "4"  # dist_train.sh CONFIG NPROC
            ports.append(env["PORT"])
            assert f"port {env['PORT']}" in title
        elif "robustness of" in title or "train classification" in title:
            assert len(env["CUDA_VISIBLE_DEVICES"].split(",")) == 1 and "PORT" not in env
            assert f"GPU {env['CUDA_VISIBLE_DEVICES']})" in title
        else:
            assert "CUDA_VISIBLE_DEVICES" not in env  # conversions and the report: CPU
    assert len(ports) == 8 and set(ports) == {"29500", "29501"}  # two trainings at a time
    gpus_used = {g for argv in commands.values() for a in argv
                 if a.startswith("CUDA_VISIBLE_DEVICES=") for g in a.split("=")[1].split(",")}
    assert gpus_used == {str(i) for i in range(8)}


def test_gpu_options_are_checked(tmp_path):
    suite = load_suite(REPO / "configs" / "cifar10.yaml")
    for options, message in ((Options(gpus=0), "--gpus must be >= 1"),
                             (Options(gpus_per_job=2), "needs --launcher pytorch"),
                             (Options(gpus=2, gpus_per_job=4, launcher="pytorch"), "more than"),
                             (Options(cpus_per_task=0), "--cpus-per-task")):
        options.work_dir = str(tmp_path)
        with pytest.raises(SuiteError, match=message):
            build_plan(suite, options)


def test_slurm_commands_pass_gpus_cpus_and_time_limit(tmp_path):
    options = Options(work_dir=str(tmp_path), launcher="slurm", partition="gpu", gpus=8,
                      gpus_per_job=4, cpus_per_task=10, time_limit="1-12:00:00")
    plan = build_plan(load_suite(REPO / "configs" / "full_network.yaml"), options)
    train = next(s for s in plan.steps if s.id == "train:detection/ant/full-network")
    assert {k: train.env[k] for k in ("GPUS", "CPUS_PER_TASK", "TIME_LIMIT")} == \
        {"GPUS": "4", "CPUS_PER_TASK": "10", "TIME_LIMIT": "1-12:00:00"}
    evaluate = next(s for s in plan.steps if s.id == "evaluate:segmentation/ant/full-network")
    assert evaluate.env["GPUS"] == "1" and evaluate.env["TIME_LIMIT"] == "1-12:00:00"
    cifar = next(s for s in plan.steps if s.id == "train:classification/ant/full-network")
    assert "--cpus-per-task=10" in cifar.argv and "--time=1-12:00:00" in cifar.argv
    assert all(s.gpus == 0 for s in plan.steps)  # srun allocates, the executor hands out none
    for tool in ("mmdetection/tools/slurm_train.sh", "mmsegmentation/tools/slurm_test.sh"):
        text = (REPO / tool).read_text()
        assert '--cpus-per-task="${CPUS_PER_TASK:-5}"' in text
        assert '--time="${TIME_LIMIT:-2-00:00:00}"' in text


# ----------------------------------------------------------------------------- data and preflight


def _suite_with_data(tmp_path: Path, name: str, data: dict) -> Path:
    raw = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
    raw["data"] = {k: str(v) for k, v in data.items()}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_real_data_paths_reach_every_command(tmp_path):
    data = {"coco": tmp_path / "d" / "coco", "ade20k": tmp_path / "d" / "ade",
            "cifar10": tmp_path / "d" / "c10", "cifar10c": tmp_path / "d" / "c10c"}
    suite = load_suite(_suite_with_data(tmp_path, "full_network", data))
    plan = build_plan(suite, Options(work_dir=str(tmp_path / "w"), backbones=["swin_t", "ant"]))
    checked = 0
    for step in plan.steps:
        argv = step.argv
        if step.task == "detection" and step.kind in ("train", "evaluate"):
            assert f"test_dataloader.dataset.data_root={data['coco']}/" in argv
            assert f"test_evaluator.ann_file={data['coco']}/annotations/instances_val2017.json" in argv
            assert f"train_dataloader.dataset.data_root={data['coco']}/" in argv
            checked += 1
        elif step.task == "segmentation" and step.kind in ("train", "evaluate"):
            assert f"val_dataloader.dataset.data_root={data['ade20k']}" in argv
            checked += 1
        elif step.task == "classification":
            assert argv[argv.index("--data") + 1] == str(data["cifar10"])
            if step.kind == "evaluate":
                assert argv[argv.index("--cifar10c-dir") + 1] == str(data["cifar10c"])
            checked += 1
    assert checked == 2 * 3 * 2


@pytest.mark.parametrize("task", ["detection", "segmentation"])
def test_data_cfg_options_point_every_config_at_the_data(tmp_path, task):
    """Parsed and merged as the robustness tool does: the options land on each config's
    datasets and evaluators (no dataset wrapper in between)."""
    from mmengine.config import Config

    from robust_transfer.openmmlab.robustness import build_robustness_parser

    root = tmp_path / "data"
    suite = load_suite(_suite_with_data(tmp_path, "prime", {"coco": root, "ade20k": root,
                                                            "cifar10": root}))
    plan = build_plan(suite, Options(work_dir=str(tmp_path / "w"), tasks=[task]))
    evaluations = [s for s in plan.steps if s.kind == "evaluate"]
    assert evaluations
    for step in evaluations:
        args = build_robustness_parser(task).parse_args(step.argv[2:])
        cfg = Config.fromfile(str(REPO / args.config))
        cfg.merge_from_dict(args.cfg_options)
        for split in ("train", "val", "test"):
            dataset = cfg[f"{split}_dataloader"]["dataset"]
            assert str(dataset["data_root"]).rstrip("/") == str(root), (args.config, split)
            assert "dataset" not in dataset  # not a wrapper given a data_root it would ignore
        if task == "detection":
            assert cfg.test_evaluator.ann_file == f"{root}/annotations/instances_val2017.json"


def test_preflight_lists_everything_missing_in_one_message_and_starts_nothing(tmp_path, capsys,
                                                                               monkeypatch):
    coco = tmp_path / "d" / "coco"
    (coco / "annotations").mkdir(parents=True)
    (coco / "annotations" / "instances_val2017.json").write_text("{}")
    (coco / "val2017").mkdir()
    data = {"coco": coco, "ade20k": tmp_path / "d" / "ade", "cifar10": tmp_path / "d" / "c10",
            "cifar10c": tmp_path / "d" / "c10c"}
    suite = _suite_with_data(tmp_path, "full_network", data)
    started = []
    monkeypatch.setattr(Executor, "run", lambda self: started.append(1) or 0)
    work = tmp_path / "w"
    argv = ["reproduce", str(suite), "--work-dir", str(work), "--backbone-dir", str(tmp_path / "none")]
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert not started and "Traceback" not in error and not (work / "logs").exists()
    assert error.count("robust-transfer reproduce: error:") == 1
    expected = [f"{coco}/annotations/instances_train2017.json", f"{coco}/train2017",
                str(data["ade20k"]), str(data["cifar10"]), str(data["cifar10c"]),
                *[str(tmp_path / "none" / f) for f in ("resnet50-0676ba61.pth", "ANT_Model.pth",
                                                       "deepaugment_and_augmix.pth.tar",
                                                       "swin_tiny_patch4_window7_224.pth")]]
    for path in expected:
        assert path in error, path
    assert f"{coco}/val2017" not in error and "instances_val2017" not in error  # present
    assert "9 input(s) of the plan are missing" in error
    # the dry run prints the plan, then the same list as a warning, and succeeds
    assert cli.main([*argv, "--dry-run"]) == 0
    output = capsys.readouterr().out
    assert output.index("# [1/") < output.index("# warning: 9 input(s)")
    assert all(path in output for path in expected)


def test_inputs_written_by_an_earlier_step_are_not_missing(tmp_path):
    plan = build_plan(load_suite(REPO / "configs" / "cifar10.yaml", smoke=True),
                      Options(work_dir=str(tmp_path)))
    assert plan.missing_inputs() == []  # synthetic data, stand-ins and trainings come first
    evaluate_only = build_plan(load_suite(REPO / "configs" / "cifar10.yaml", smoke=True),
                               Options(work_dir=str(tmp_path), steps=["evaluate"],
                                       backbones=["ant"], modes=["fixed-feature"]))
    missing = evaluate_only.missing_inputs()
    assert sorted(missing) == sorted([
        f"synthetic CIFAR-10 (the prepare:data step): {tmp_path / 'data' / 'cifar10'}",
        "trained classification model of 'ant' / fixed-feature (its train step): "
        f"{tmp_path / 'train' / 'classification' / 'ant__fixed-feature' / 'checkpoint.pt.latest'}"])


def test_a_finished_step_needs_nothing(tmp_path):
    step = Step("a", "convert", "a", ["x"], needs=[("the input", tmp_path / "absent")],
                done=lambda: True)
    later = Step("b", "train", "b", ["x"], needs=[("made by c", tmp_path / "out" / "f.pth")])
    maker = Step("c", "convert", "c", ["x"], makes=[tmp_path / "out"])
    assert Plan(None, [step, later, maker], tmp_path, tmp_path).missing_inputs() == []
    assert Plan(None, [later], tmp_path, tmp_path).missing_inputs() == \
        [f"made by c: {tmp_path / 'out' / 'f.pth'}"]


def test_reproduce_help_documents_the_new_flags(capsys):
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--gpus N", "--gpus-per-job G", "--cpus-per-task", "--time", "--base-port"):
        assert flag in text, flag
    assert "CUDA_VISIBLE_DEVICES" in text


def test_eval_shards_split_each_grid_into_one_gpu_jobs_and_merge_them(tmp_path):
    plan = build_plan(load_suite(REPO / "configs" / "full_network.yaml"),
                      Options(work_dir=str(tmp_path), gpus=4, launcher="pytorch", eval_shards=4,
                              backbones=["ant"], tasks=["detection", "classification"]))
    ids = [s.id for s in plan.steps]
    parts = [s for s in plan.steps if (s.kind, s.task, s.backbone, s.mode) ==
             ("evaluate", "detection", "ant", "full-network")]
    assert [p.argv[p.argv.index("--shard") + 1] for p in parts] == ["0/4", "1/4", "2/4", "3/4"]
    assert all(p.gpus == 1 and "train:detection/ant/full-network" in p.deps for p in parts)
    merge = next(s for s in plan.steps if s.id == "merge:detection/ant/full-network#shards")
    assert merge.deps == [p.id for p in parts] and merge.gpus == 0
    assert merge.id in plan.steps[-1].deps and ids.index(merge.id) > ids.index(parts[-1].id)
    assert "evaluate:classification/ant/full-network" in ids  # main.py has no shards
    results = tmp_path / "results" / "detection"
    results.mkdir(parents=True)
    for i in (0, 2):  # the merge takes the shard files there are when it runs
        (results / f"ant__full-network.shard{i}-of-4.json").write_text("{}")
    argv = merge.resolve(merge)
    assert argv[1:4] == ["-m", "robust_transfer.cli", "merge"]
    assert argv[4:] == [str(results / "ant__full-network.shard0-of-4.json"),
                        str(results / "ant__full-network.shard2-of-4.json"),
                        "-o", str(results / "ant__full-network.json")]
    with pytest.raises(SuiteError, match="--eval-shards"):
        build_plan(load_suite(REPO / "configs" / "cifar10.yaml"),
                   Options(work_dir=str(tmp_path), eval_shards=0))
