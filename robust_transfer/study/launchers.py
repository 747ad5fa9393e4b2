"""How a command is launched under ``--launcher none | pytorch | slurm``: one process, torchrun
through a task's ``tools/dist_*.sh``, or srun (``tools/slurm_*.sh``, or ``srun`` around it)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .layout import rel
from .options import Options
from .steps import PYTHON


@dataclass(frozen=True)
class OpenMMLabTools:
    """The tools of one OpenMMLab task, relative to the repository root."""

    train: str
    test: str
    dist_train: str
    slurm_train: str
    slurm_test: str
    slurm_train_takes_work_dir: bool  # mmdet's slurm_train.sh: PARTITION JOB CONFIG WORK_DIR

    @classmethod
    def of(cls, root: str, slurm_train_takes_work_dir: bool) -> "OpenMMLabTools":
        """The tools of the OpenMMLab fork ``root`` (mmdetection, mmsegmentation)."""
        return cls(f"{root}/tools/train.py", f"{root}/tools/test_robustness.py",
                   f"{root}/tools/dist_train.sh", f"{root}/tools/slurm_train.sh",
                   f"{root}/tools/slurm_test.sh", slurm_train_takes_work_dir)


@dataclass
class Launch:
    """A launched command: its argv, environment and the repository files it runs."""

    argv: list[str]
    env: dict[str, str]
    refs: list[str]


def launch_train(tools: OpenMMLabTools, config: str, work_dir: Path, args: list[str],
                 cfg: list[str], options: Options, job: str) -> Launch:
    """An OpenMMLab training under the options' launcher (``cfg``: its ``--cfg-options``)."""
    python = {"PYTHON": PYTHON}
    if options.launcher == "none":
        return Launch([PYTHON, tools.train, config, "--work-dir", rel(work_dir), *args, *cfg], {},
                      [tools.train])
    gpus = options.job_gpus()
    if options.launcher == "pytorch":
        return Launch(["bash", tools.dist_train, config, str(gpus), "--work-dir", rel(work_dir),
                       *args, *cfg], python, [tools.dist_train, tools.train])
    if tools.slurm_train_takes_work_dir:  # PARTITION JOB CONFIG WORK_DIR [ARGS]
        argv = ["bash", tools.slurm_train, options.partition, job, config, rel(work_dir),
                *args, *cfg]
    else:  # PARTITION JOB CONFIG [ARGS]
        argv = ["bash", tools.slurm_train, options.partition, job, config, "--work-dir",
                rel(work_dir), *args, *cfg]
    return Launch(argv, {**slurm_env(options, gpus), **python}, [tools.slurm_train, tools.train])


def launch_test(tools: OpenMMLabTools, config: str, checkpoint: Path, args: list[str],
                options: Options, job: str) -> Launch:
    """An OpenMMLab robustness evaluation: one process on one GPU (a one-GPU Slurm job)."""
    refs = [config, tools.test]
    if options.launcher in ("none", "pytorch"):
        return Launch([PYTHON, tools.test, config, rel(checkpoint), *args], {}, refs)
    return Launch(["bash", tools.slurm_test, options.partition, job, config, rel(checkpoint),
                   "--robustness", *args], {**slurm_env(options, 1), "PYTHON": PYTHON},
                  refs + [tools.slurm_test])


def slurm_env(options: Options, gpus: int) -> dict[str, str]:
    """What tools/slurm_*.sh read: GPUs of the job, CPU cores per task, time limit."""
    return {"GPUS": str(gpus), "GPUS_PER_NODE": str(min(gpus, 8)),
            "CPUS_PER_TASK": str(options.cpus_per_task), "TIME_LIMIT": options.time_limit}


def slurm_wrap(argv: list[str], options: Options, job: str) -> list[str]:
    """``argv`` as a one-GPU Slurm job (--launcher slurm), with the CPUs and time limit."""
    if options.launcher != "slurm":
        return argv
    return ["srun", "-p", options.partition, f"--job-name={job}", "--gres=gpu:1", "--ntasks=1",
            f"--cpus-per-task={options.cpus_per_task}", f"--time={options.time_limit}",
            "--kill-on-bad-exit=1", *argv]
