"""The GPU smoke (issue 12, item 2) on a machine without CUDA, and the tools' GPU defaults (item 5).

Fast: the skip paths of scripts/gpu_smoke.sh and of ``python -m robust_transfer.gpu_smoke``, the
script's command lines (with a fake nvidia-smi and --dry-run), the device-vs-reference
comparison and its tolerances, and how ``--backend`` / ``--corrupt-on`` auto resolve per device.
Slow: the whole smoke with ``--device cpu --reference-device cpu`` (train, both tool modes, the
classification evaluation, compare), where the two runs must agree exactly.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "gpu_smoke.sh"
NO_GPU = not torch.cuda.is_available()


def _script(*args, env_extra=None, path_prefix=None, timeout=60, cwd=REPO_ROOT):
    env = dict(os.environ, **(env_extra or {}))
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}{os.pathsep}{env['PATH']}"
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _fake_nvidia_smi(folder: Path, listing: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / "nvidia-smi"
    tool.write_text(f"#!/bin/sh\nprintf '%s' '{listing}'\n")
    tool.chmod(0o755)
    return folder


# ----------------------------------------------------------------------------- skip paths


@pytest.mark.skipif(not NO_GPU, reason="this machine has CUDA: the skip path does not apply")
def test_script_skips_without_gpu_before_any_setup(tmp_path):
    """No GPU listed and no CUDA torch: one line, exit 0, in seconds, and no venv built."""
    fake = _fake_nvidia_smi(tmp_path / "bin", "No devices were found\n")
    venv = tmp_path / "venv-gpu"
    start = time.perf_counter()
    proc = _script("--wheels", str(tmp_path), "--out", str(tmp_path / "out"),
                   env_extra={"VENV": str(venv), "PYTHON": sys.executable}, path_prefix=fake)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("gpu smoke: skipped: no NVIDIA GPU visible")
    assert time.perf_counter() - start < 30
    assert not venv.exists() and not (tmp_path / "out").exists()
    # the same without the fake tool (on this machine: whatever nvidia-smi there is, if any)
    proc = _script(env_extra={"VENV": str(venv)})
    assert proc.returncode == 0 and "skipped" in proc.stdout and not venv.exists()


def test_script_commands_when_a_gpu_is_listed(tmp_path):
    """With a GPU listed, --dry-run shows the set-up of each kind and the module's command line."""
    fake = _fake_nvidia_smi(tmp_path / "bin", "GPU 0: NVIDIA H200 (UUID: GPU-0)\n")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    proc = _script("--wheels", str(wheels), "--dry-run", "--iters", "5", path_prefix=fake,
                   env_extra={"PYTHON": "python3.12"})
    assert proc.returncode == 0, proc.stderr
    setup, smoke = proc.stdout.splitlines()[:2]
    assert setup == (f"env RT_WHEELS={wheels} RT_SYSTEM_TORCH=1 PYTHON=python3.12 VENV=.venv-gpu "
                     "bash scripts/setup.sh")
    assert smoke == (".venv-gpu/bin/python -m robust_transfer.gpu_smoke "
                     f"--out {REPO_ROOT}/outputs/gpu_smoke --iters 5")
    proc = _script("--dry-run", "--out", "o", path_prefix=fake, cwd=tmp_path)  # relative to the caller
    assert proc.stdout.splitlines()[:2] == ["env VENV=.venv bash scripts/setup.sh",
                                            f".venv/bin/python -m robust_transfer.gpu_smoke --out {tmp_path}/o"]
    assert "total wall time" in proc.stdout


def test_script_rejects_a_missing_wheel_folder(tmp_path):
    proc = _script("--wheels", str(tmp_path / "nowhere"))
    assert proc.returncode == 2 and "is not a folder" in proc.stderr


@pytest.mark.skipif(not NO_GPU, reason="this machine has CUDA: the skip path does not apply")
def test_module_skips_without_cuda(tmp_path, capsys):
    from robust_transfer.gpu_smoke import main

    assert main(["--out", str(tmp_path / "out"), "--device", "cuda"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("gpu smoke: skipped: torch.cuda.is_available() is False")
    assert not (tmp_path / "out").exists()  # nothing written
    # a CUDA reference device is skipped the same way
    assert main(["--out", str(tmp_path / "out"), "--device", "cpu", "--reference-device", "cuda:1"]) == 0
    assert "skipped" in capsys.readouterr().out


def test_module_help_and_bad_flags(capsys):
    from robust_transfer.gpu_smoke import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--out", "--device", "--reference-device", "--iters", "--cls-epochs", "--corruptions",
                 "--severity", "--seed", "--jobs", "--timeout", "--min-clean-scale"):
        assert flag in text
    for bad in (["--iters", "0"], ["--corruptions", "no_such_corruption"], ["--severity", "6"],
                ["--reference-device", "gpu0"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["--out", "o", "--device", "cpu", *bad])
        assert exit_info.value.code == 2


# ----------------------------------------------------------------------------- comparisons


def _doc(**cells):
    return {"cells": {name: {severity: metrics} for name, (severity, metrics) in cells.items()}}


def test_a_metric_inside_its_tolerance_passes_and_outside_fails():
    from robust_transfer.gpu_smoke.compare import TOLERANCES, compare_metric

    top1 = TOLERANCES["top1"]
    inside = compare_metric("cls clean@0", "top1", 80.0, 80.0 + top1.max_abs_diff, top1)
    assert inside.passed and inside.diff == pytest.approx(top1.max_abs_diff)
    assert inside.line().startswith("PASS cls clean@0: top1 80.0000 vs 85.0000")
    outside = compare_metric("cls clean@0", "top1", 80.0, 80.0 + top1.max_abs_diff + 0.01, top1)
    assert not outside.passed and outside.line().startswith("FAIL")
    ap = TOLERANCES["bbox_mAP"]
    assert compare_metric("d", "bbox_mAP", 0.30, 0.32, ap).passed
    assert not compare_metric("d", "bbox_mAP", 0.30, 0.34, ap).passed
    assert not compare_metric("d", "bbox_mAP", float("nan"), 0.30, ap).passed  # NaN never passes


def test_missing_metric_cell_or_tolerance_fails():
    from robust_transfer.gpu_smoke.compare import compare_results, largest_differences

    reference = _doc(clean=("0", {"mIoU": 50.0, "aAcc": 90.0}), contrast=("3", {"mIoU": 30.0, "aAcc": 80.0}))
    same = compare_results("seg", reference, reference, ["mIoU", "aAcc"])
    assert len(same) == 4 and all(c.passed for c in same)
    lacking_metric = _doc(clean=("0", {"mIoU": 50.0}), contrast=("3", {"mIoU": 30.5, "aAcc": 80.0}))
    checks = compare_results("seg", lacking_metric, reference, ["mIoU", "aAcc"])
    failed = [c for c in checks if not c.passed]
    assert len(failed) == 1 and "aAcc missing" in failed[0].detail and "device results" in failed[0].detail
    assert largest_differences(checks) == {"mIoU": 0.5, "aAcc": 0.0}
    lacking_cell = _doc(clean=("0", {"mIoU": 50.0, "aAcc": 90.0}))
    failed = [c for c in compare_results("seg", lacking_cell, reference, ["mIoU"]) if not c.passed]
    assert len(failed) == 1 and failed[0].name == "seg contrast@3" and "cell missing" in failed[0].detail
    no_tolerance = compare_results("seg", reference, reference, ["mDice"])
    assert not any(c.passed for c in no_tolerance) and "no tolerance" in no_tolerance[0].detail
    assert not compare_results("seg", reference, {"cells": {}}, ["mIoU"])[0].passed  # nothing compared


def test_every_compared_metric_has_a_stated_tolerance():
    from robust_transfer.gpu_smoke.compare import TASK_METRICS, TOLERANCES

    for metrics in TASK_METRICS.values():
        for metric in metrics:
            assert TOLERANCES[metric].max_abs_diff > 0 and TOLERANCES[metric].why


def _write_eval(folder: Path, file: str, backend: str, corrupt_on: str, cells: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / file).write_text(json.dumps({"backend": backend, "extra": {"corrupt_on": corrupt_on},
                                           "cells": cells}))


def test_result_checks_need_the_recorded_mode_a_trained_model_and_both_files(tmp_path):
    """On results files as the tools write them: the recorded backend/mode must be the one asked
    for, the device's clean value must reach the floor, and a missing file fails."""
    import argparse

    from robust_transfer.gpu_smoke.compare import MIN_CLEAN, result_checks

    args = argparse.Namespace(out=str(tmp_path), device="cuda", reference_device="cpu", min_clean_scale=1.0)
    det = {"clean": {"0": {"bbox_mAP": 0.30, "segm_mAP": 0.25}}, "fog": {"3": {"bbox_mAP": 0.1, "segm_mAP": 0.1}}}
    seg = {"clean": {"0": {"mIoU": 60.0, "aAcc": 80.0}}}
    for run in ("device", "reference"):
        folder = tmp_path / "eval" / run
        _write_eval(folder, "detection_pipeline.json", "numpy", "pipeline", det)
        _write_eval(folder, "detection_batch.json", "torch-batch", "batch", det)
        _write_eval(folder, "segmentation_pipeline.json", "numpy", "pipeline", seg)
        # the device's batch-mode run recorded pipeline mode: the GPU default was not applied
        _write_eval(folder, "segmentation_batch.json", "numpy" if run == "device" else "torch-batch",
                    "pipeline" if run == "device" else "batch", seg)
    # the classifier did not learn on the device (below the floor); the reference file is missing
    _write_eval(tmp_path / "eval" / "device", "classification.json", "torch", "device-batch",
                {"clean": {"0": {"top1": MIN_CLEAN["top1"] - 1}}})
    failed = {c.name: c.detail for c in result_checks(args) if not c.passed}
    assert set(failed) == {"segmentation/batch recorded", "classification/device-batch"}
    assert "expected torch-batch, batch" in failed["segmentation/batch recorded"]
    assert "no results at" in failed["classification/device-batch"]
    _write_eval(tmp_path / "eval" / "reference", "classification.json", "torch", "device-batch",
                {"clean": {"0": {"top1": 97.5}}})
    failed = {c.name: c.detail for c in result_checks(args) if not c.passed}
    assert failed["classification/device-batch learned on cuda"] == "clean top1 49.0 > 50"
    assert failed["classification/device-batch cuda vs cpu clean@0"].startswith("top1 49.0000 vs 97.5000")
    args.min_clean_scale = 0.0
    assert "classification/device-batch learned on cuda" not in {
        c.name for c in result_checks(args) if not c.passed}


def test_device_environment_hides_or_selects_gpus():
    from robust_transfer.gpu_smoke.devices import device_env

    base = {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "4,6"}
    assert device_env("cpu", base, 3)["CUDA_VISIBLE_DEVICES"] == ""
    assert device_env("cpu", base, 3)["OMP_NUM_THREADS"] == "3"
    assert device_env("cuda:1", base, 1)["CUDA_VISIBLE_DEVICES"] == "6"
    assert device_env("cuda", base, 1)["CUDA_VISIBLE_DEVICES"] == "4,6"
    assert device_env("cuda:2", {"PATH": "/bin"}, 1)["CUDA_VISIBLE_DEVICES"] == "2"
    assert str(REPO_ROOT) in device_env("cpu", base, 1)["PYTHONPATH"]


# ----------------------------------------------------------------------------- item 5: defaults


def test_robustness_tool_defaults_per_device():
    from robust_transfer.openmmlab.corruption_choice import (
        describe_corruption_choice, resolve_backend, resolve_corruption_defaults)
    from robust_transfer.openmmlab.robustness import build_robustness_parser

    # CPU: today's defaults; CUDA: torch + batch; --backend numpy alone is the reference on CUDA
    assert resolve_corruption_defaults("auto", "auto", "cpu") == ("numpy", "pipeline")
    assert resolve_corruption_defaults(None, None, "cpu") == ("numpy", "pipeline")
    assert resolve_corruption_defaults("auto", "auto", "cuda") == ("torch", "batch")
    assert resolve_corruption_defaults("auto", "auto", "cuda:3") == ("torch", "batch")
    assert resolve_corruption_defaults("numpy", "auto", "cuda") == ("numpy", "pipeline")
    assert resolve_corruption_defaults("torch", "auto", "cuda") == ("torch", "batch")
    assert resolve_corruption_defaults("torch", "auto", "cpu") == ("torch", "pipeline")
    assert resolve_corruption_defaults("auto", "pipeline", "cuda") == ("numpy", "pipeline")
    assert resolve_corruption_defaults("auto", "batch", "cpu") == ("torch", "batch")
    with pytest.raises(ValueError, match="torch backend"):
        resolve_corruption_defaults("numpy", "batch", "cuda")

    parser = build_robustness_parser("detection")
    args = parser.parse_args(["c.py", "k.pth"])
    assert (args.backend, args.corrupt_on) == ("auto", "auto")
    assert resolve_backend(args, device="cuda") == "torch" and args.corrupt_on == "batch"
    assert args.corruption_defaults == {"device": "cuda", "auto": ["backend", "corrupt_on"]}
    assert describe_corruption_choice(args) == ("[robustness] corruptions: --backend torch --corrupt-on "
                                                "batch (--backend and --corrupt-on auto: model on cuda)")
    args = parser.parse_args(["c.py", "k.pth", "--backend", "numpy"])
    assert resolve_backend(args, device="cuda") == "numpy" and args.corrupt_on == "pipeline"
    assert args.corruption_defaults["auto"] == ["corrupt_on"]
    args = parser.parse_args(["c.py", "k.pth"])
    resolve_backend(args)  # this machine's device, as the tool does it
    expected = ("torch", "batch") if torch.cuda.is_available() else ("numpy", "pipeline")
    assert (args.backend, args.corrupt_on) == expected
    help_text = " ".join(parser.format_help().split())
    assert "auto (default): batch when the model runs on CUDA" in help_text


# ----------------------------------------------------------------------------- end to end (slow)


@pytest.mark.slow
def test_smoke_end_to_end_on_cpu(tmp_path):
    """The whole flow with both runs on the CPU: every tool succeeds, every check passes, and
    the two evaluations of each checkpoint agree exactly."""
    out = tmp_path / "smoke"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "-m", "robust_transfer.gpu_smoke", "--out", str(out),
                           "--device", "cpu", "--reference-device", "cpu", "--iters", "20",
                           "--cls-epochs", "1", "--min-clean-scale", "0", "--corruptions",
                           "gaussian_noise", "contrast", "--jobs", "2"], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict"] == "PASS"
    stages = {t["stage"]: t for t in summary["timings"]}
    expected_jobs = {"train-detection", "train-segmentation", "train-classification",
                     *(f"eval-{task}-{mode}-{run}" for task in ("detection", "segmentation")
                       for mode in ("pipeline", "batch") for run in ("device", "reference")),
                     "eval-classification-device", "eval-classification-reference"}
    assert expected_jobs <= set(stages) and all(stages[j]["status"] == "ok" for j in expected_jobs)
    compared = [c for c in summary["checks"] if c["metric"] is not None]
    # 3 cells (clean + 2 corruptions) x (2 modes x 2 detection + 2 modes x 2 segmentation + 1 top-1)
    assert len(compared) == 3 * (4 + 4 + 1)
    assert all(c["diff"] == 0.0 for c in compared)  # same device, same seeds: the same numbers
    text = proc.stdout
    assert "gpu smoke timings" in text and "| total" in text
    assert text.count("\nPASS ") + text.startswith("PASS ") == len(summary["checks"])
    assert "gpu smoke: PASS" in text.splitlines()[-1]
    recorded = [c for c in summary["checks"] if c["name"].endswith(" recorded")]
    assert len(recorded) == 5 and all(c["passed"] for c in recorded)
    assert (out / "logs" / "eval-detection-batch-reference.log").is_file()
