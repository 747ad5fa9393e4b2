"""The set-up's build decisions (robust_transfer/environment.py) and the final ops check.

The CUDA half of the check needs a GPU; here it is tested up to the device boundary: the plan a
GPU machine gets, and that a CPU-only build is refused where CUDA ops were expected.
"""
import subprocess
import sys
from pathlib import Path

import pytest

from robust_transfer.environment import (DEFAULT_CUDA_ARCHS, EnvironmentProblem, Machine,
                                         cache_key, check_ops, plan_build)

REPO = Path(__file__).resolve().parents[1]


def machine(**changes) -> Machine:
    """This project's CPU kind: nvcc and a +cu130 torch, but no GPU, 2 cores, 24 GB."""
    values = dict(torch_version="2.14.1+cu130", torch_cuda="13.0", nvcc="/usr/local/cuda/bin/nvcc",
                  capabilities=(), cpu_count=2, memory_gb=24.0)
    values.update(changes)
    return Machine(**values)


def test_cpu_machine_with_nvcc_but_no_gpu_keeps_cpu_ops_and_two_jobs():
    plan = plan_build(machine(), env={})
    assert not plan.cuda and plan.arch_list is None and plan.max_jobs == 2
    assert "no visible GPU" in plan.reason
    assert plan.cache_key == "torch-2.14.1+cu130/cpu"


def test_gpu_machine_builds_for_its_own_architectures():
    plan = plan_build(machine(capabilities=((9, 0), (9, 0), (8, 0)), cpu_count=16, memory_gb=128),
                      env={})
    assert plan.cuda and plan.arch_list == "8.0;9.0"
    assert plan.max_jobs == 16
    assert plan.cache_key == "torch-2.14.1+cu130/cuda13.0-sm80_90"


def test_memory_caps_the_jobs_of_a_cuda_build():
    plan = plan_build(machine(capabilities=((9, 0),), cpu_count=64, memory_gb=20), env={})
    assert plan.max_jobs == 6  # 20 GB / 3 GB per nvcc process


@pytest.mark.parametrize("env, cuda", [({"RT_CUDA": "0"}, False), ({"RT_CUDA": "1"}, True)])
def test_rt_cuda_forces_either_way(env, cuda):
    gpu = machine(capabilities=((9, 0),))
    plan = plan_build(gpu if not cuda else machine(), env=env)
    assert plan.cuda is cuda
    if cuda:  # a GPU-less build node of a cluster gets the documented default
        assert plan.arch_list == DEFAULT_CUDA_ARCHS


def test_arch_list_and_jobs_can_be_overridden():
    plan = plan_build(machine(capabilities=((9, 0),)),
                      env={"TORCH_CUDA_ARCH_LIST": "9.0+PTX", "MAX_JOBS": "3"})
    assert plan.arch_list == "9.0+PTX" and plan.max_jobs == 3
    assert plan.cache_key.endswith("-sm90PTX")


@pytest.mark.parametrize("changes, missing", [({"nvcc": None}, "nvcc"),
                                              ({"torch_cuda": None}, "CUDA build of torch")])
def test_forced_cuda_without_toolkit_says_what_is_missing(changes, missing):
    with pytest.raises(EnvironmentProblem, match=missing):
        plan_build(machine(**changes), env={"RT_CUDA": "1"})
    assert not plan_build(machine(**changes, capabilities=((9, 0),)), env={}).cuda


def test_bad_settings_are_refused():
    with pytest.raises(EnvironmentProblem, match="RT_CUDA='yes'"):
        plan_build(machine(), env={"RT_CUDA": "yes"})
    with pytest.raises(EnvironmentProblem, match="MAX_JOBS"):
        plan_build(machine(), env={"MAX_JOBS": "many"})


def test_cache_keys_never_collide_between_builds():
    keys = {cache_key("2.14.1+cu130", "13.0", None), cache_key("2.14.1+cu130", "13.0", "9.0"),
            cache_key("2.14.1+cu130", "13.0", "8.0;9.0"), cache_key("2.14.1+cu130", "12.8", "9.0"),
            cache_key("2.11.0+cu130", "13.0", "9.0"), cache_key("2.14.1+cpu", None, None)}
    assert len(keys) == 6


def test_plan_prints_shell_assignments():
    out = subprocess.run([sys.executable, "-m", "robust_transfer.environment", "plan"],
                         capture_output=True, text=True, check=True, cwd=REPO,
                         env={"RT_CUDA": "0", "PATH": "", "PYTHONPATH": str(REPO)})
    values = dict(line.split("=", 1) for line in out.stdout.splitlines())
    assert values["RT_OPS"] == "cpu" and values["RT_OPS_REASON"] == "RT_CUDA=0"
    assert set(values) == {"RT_OPS", "RT_OPS_REASON", "RT_ARCH_LIST", "RT_MAX_JOBS", "RT_CACHE_KEY"}


def test_check_passes_for_this_build_and_refuses_a_cpu_build_where_cuda_was_expected():
    import torch
    from mmcv.ops import get_compiling_cuda_version

    assert check_ops("cpu") == []
    if get_compiling_cuda_version() == "not available":
        problems = check_ops("cuda")
        assert len(problems) == 1 and "built without CUDA ops" in problems[0]
    elif not torch.cuda.is_available():
        pytest.skip("mmcv has CUDA ops but no GPU is visible: the CUDA half needs a GPU")
    else:
        assert check_ops("cuda") == []


def test_check_command_exit_status():
    run = subprocess.run([sys.executable, "-m", "robust_transfer.environment", "check", "--ops", "cpu"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_check_warns_when_the_native_philox_module_is_missing(monkeypatch, capsys):
    from robust_transfer import environment

    monkeypatch.setattr(environment, "check_ops", lambda expect: [])
    assert environment.main(["check", "--ops", "cpu"]) == 0
    assert "warning" not in capsys.readouterr().err  # this checkout's set-up built it
    monkeypatch.setattr(environment, "native_philox_built", lambda: False)
    assert environment.main(["check", "--ops", "cpu"]) == 0  # a warning, not a failure
    assert "native Philox module was not built" in capsys.readouterr().err


def test_setup_scripts_parse_and_fetch_wheels_refuses_bad_arguments(tmp_path):
    for script in ("setup.sh", "fetch_wheels.sh"):
        subprocess.run(["bash", "-n", str(REPO / "scripts" / script)], check=True)
    helped = subprocess.run(["bash", str(REPO / "scripts/fetch_wheels.sh"), "--help"],
                            capture_output=True, text=True)
    assert helped.returncode == 0 and "--python-version" in helped.stdout
    bad = subprocess.run(["bash", str(REPO / "scripts/fetch_wheels.sh"), str(tmp_path), "--bogus"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown argument --bogus" in bad.stderr

