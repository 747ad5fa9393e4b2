"""Bad input to the detection and segmentation tools (train.py, test.py, test_robustness.py)
ends in one ``prog: error: ...`` line and exit status 2, before any model is built, with
nothing written. The real tool scripts run as subprocesses; each fails in seconds."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FRAMEWORKS = {
    "mmdetection": REPO / "mmdetection" / "configs" / "tests" / "mask-rcnn_r18-tiny_fpn_synthetic-coco.py",
    "mmsegmentation": REPO / "mmsegmentation" / "configs" / "tiny"
    / "upernet_r18-tiny_1xb4-40it_synthetic-ade20k-64x80.py",
}


@pytest.fixture
def workspace(tmp_path):
    """A folder with a text file posing as a checkpoint, a real (tiny) torch checkpoint and a
    plain file that outputs are asked to go below."""
    import torch

    (tmp_path / "not_a_checkpoint.pth").write_text("these are not the weights you are looking for\n")
    torch.save({"state_dict": {"w": torch.zeros(1)}}, tmp_path / "tiny.pth")
    (tmp_path / "a_file").write_text("")
    return tmp_path


def _run_tool(framework: str, tool: str, *args, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore",
               SYNTHETIC_COCO_ROOT=str(cwd / "no_data"))
    script = REPO / framework / "tools" / tool
    return subprocess.run([sys.executable, str(script), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def _assert_one_error_line(proc: subprocess.CompletedProcess, tool: str, *expected: str) -> str:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output, output
    lines = proc.stderr.strip().splitlines()
    error = lines[-1]
    assert error.startswith(f"{tool}: error: "), output
    # stderr holds the error and at most mmengine's one "Using env variable" log line
    assert len([line for line in lines if "mmengine - INFO" not in line]) == 1, output
    for text in expected:
        assert text in error, output
    return error


def _files_below(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


TOOL_ARGS = {  # tool: arguments after the config (CKPT: the checkpoint under test)
    "train.py": [],
    "test.py": ["CKPT"],
    "test_robustness.py": ["CKPT", "--corruptions", "fog", "--severities", "0", "1"],
}


def _args(tool: str, checkpoint) -> list:
    return [checkpoint if a == "CKPT" else a for a in TOOL_ARGS[tool]]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("tool", TOOL_ARGS)
def test_missing_config_is_one_line(workspace, framework, tool):
    before = _files_below(workspace)
    proc = _run_tool(framework, tool, workspace / "missing.py", *_args(tool, workspace / "tiny.pth"),
                     cwd=workspace)
    _assert_one_error_line(proc, tool, "config", "missing.py", "does not exist")
    assert _files_below(workspace) == before


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("tool", ["test.py", "test_robustness.py"])
def test_file_that_is_not_a_checkpoint_is_one_line(workspace, framework, tool):
    before = _files_below(workspace)
    proc = _run_tool(framework, tool, FRAMEWORKS[framework], *_args(tool, workspace / "not_a_checkpoint.pth"),
                     "--work-dir", workspace / "work", cwd=workspace)
    _assert_one_error_line(proc, tool, "not_a_checkpoint.pth", "not a readable torch checkpoint")
    assert _files_below(workspace) == before


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_missing_checkpoint_of_the_robustness_tool_is_one_line(workspace, framework):
    proc = _run_tool(framework, "test_robustness.py", FRAMEWORKS[framework], workspace / "gone.pth",
                     cwd=workspace)
    _assert_one_error_line(proc, "test_robustness.py", "gone.pth", "is not a file")


def test_train_resume_from_a_file_that_is_not_a_checkpoint_is_one_line(workspace):
    proc = _run_tool("mmdetection", "train.py", FRAMEWORKS["mmdetection"], "--resume",
                     workspace / "not_a_checkpoint.pth", "--work-dir", workspace / "work", cwd=workspace)
    _assert_one_error_line(proc, "train.py", "--resume", "not a readable torch checkpoint")
    assert not (workspace / "work").exists()


UNWRITABLE = {  # (framework, tool): the flags that put an output below a plain file
    ("mmdetection", "test_robustness.py"): ["--out", "a_file/r.pkl"],
    ("mmsegmentation", "test_robustness.py"): ["--work-dir", "a_file/work"],
    ("mmdetection", "test.py"): ["--out", "a_file/predictions.pkl"],
    ("mmsegmentation", "test.py"): ["--out", "a_file/predictions"],
    ("mmdetection", "train.py"): ["--work-dir", "a_file/work"],
    ("mmsegmentation", "train.py"): ["--work-dir", "a_file/work"],
    ("mmdetection", "test.py", "metrics"): ["--metrics-json", "a_file/metrics.json"],
    ("mmdetection", "test_robustness.py", "show"): ["--show-dir", "a_file/show"],
}


@pytest.mark.parametrize("case", UNWRITABLE, ids=lambda case: "-".join(case))
def test_output_that_cannot_be_written_is_one_line_before_any_work(workspace, case):
    framework, tool = case[:2]
    flags = UNWRITABLE[case]
    before = _files_below(workspace)
    proc = _run_tool(framework, tool, FRAMEWORKS[framework], *_args(tool, workspace / "tiny.pth"), *flags,
                     cwd=workspace)
    _assert_one_error_line(proc, tool, "a_file", "is a file, not a folder")
    assert _files_below(workspace) == before


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("flags, expected", [
    (["--corruptions", "fogg"], "unknown corruption or group 'fogg'"),
    (["--severities", "0", "7"], "severity 7 is outside 0..5"),
    (["--shard", "3/2"], "--shard"),
])
def test_bad_grid_is_one_line(workspace, framework, flags, expected):
    proc = _run_tool(framework, "test_robustness.py", FRAMEWORKS[framework], workspace / "tiny.pth", *flags,
                     cwd=workspace)
    _assert_one_error_line(proc, "test_robustness.py", expected)
