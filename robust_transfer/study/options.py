"""How to run a suite: every setting of the ``reproduce`` command (and of the demo) in one
dataclass, checked before anything is planned."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .suite import SuiteError

LAUNCHERS = ("none", "pytorch", "slurm")
EXECUTORS = ("subprocess", "fork")


@dataclass
class Options:
    """How to run a suite (the ``reproduce`` command's flags)."""

    # what to plan
    smoke: bool = False
    tasks: Sequence[str] | None = None
    backbones: Sequence[str] | None = None
    modes: Sequence[str] | None = None
    steps: Sequence[str] | None = None
    shard: str | None = None
    eval_shards: int = 1  # each detection/segmentation grid split into this many one-GPU jobs
    data_scale: str | None = None  # synthetic data sizes (default: the suite's synthetic.scale)
    severities: Sequence[int] | None = None  # the grid's severities (default: the suite's)
    # where
    work_dir: str | None = None
    report_dir: str | None = None
    checkpoint_dir: str | None = None
    backbone_dir: str = "checkpoints/imagenet"
    # GPUs and launchers
    gpus: int | None = None  # GPUs of the node, handed out by the executor (None: not managed)
    gpus_per_job: int | None = None  # GPUs of a detection/segmentation training (default: gpus)
    launcher: str = "none"
    partition: str | None = None
    cpus_per_task: int = 5  # Slurm: CPU cores per task (data loading workers)
    time_limit: str = "2-00:00:00"  # Slurm: time limit of each srun job
    base_port: int = 29500  # first torchrun master port; concurrent trainings count up
    # execution
    dry_run: bool = False
    executor: str | None = None  # subprocess | fork (default: the suite's run.executor)
    jobs: int | None = None  # commands at once (default: --gpus, else the suite's run.jobs)
    threads: int | None = None  # torch threads per command
    log_dir: str | None = None
    stream_report: bool = True  # False: the report's output goes to its log (the demo)

    def check(self) -> None:
        """Reject settings that cannot be planned, naming the flag."""
        if self.launcher not in LAUNCHERS:
            raise SuiteError(f"--launcher {self.launcher!r}; allowed: {', '.join(LAUNCHERS)}")
        if self.launcher == "slurm" and not self.partition:
            raise SuiteError("--launcher slurm needs --partition")
        if self.gpus is not None and self.gpus < 1:
            raise SuiteError(f"--gpus must be >= 1, got {self.gpus}")
        per_job = self.gpus_per_job
        if per_job is not None and per_job < 1:
            raise SuiteError(f"--gpus-per-job must be >= 1, got {per_job}")
        if per_job and per_job > 1 and self.launcher == "none":
            raise SuiteError("--gpus-per-job > 1 needs --launcher pytorch (torchrun) or slurm")
        if per_job and self.gpus and per_job > self.gpus and self.launcher == "pytorch":
            raise SuiteError(f"--gpus-per-job {per_job} is more than the node's --gpus {self.gpus}")
        if self.eval_shards < 1:
            raise SuiteError(f"--eval-shards must be >= 1, got {self.eval_shards}")
        if self.cpus_per_task < 1:
            raise SuiteError(f"--cpus-per-task must be >= 1, got {self.cpus_per_task}")
        if self.severities is not None and (not self.severities or any(
                not 1 <= int(s) <= 5 for s in self.severities)):
            raise SuiteError(f"--severities {' '.join(map(str, self.severities))}: give one or "
                             "more of 1 2 3 4 5 (the clean cell is always evaluated)")
        if self.executor not in (None, *EXECUTORS):
            raise SuiteError(f"--executor {self.executor!r}; allowed: {', '.join(EXECUTORS)}")

    def job_gpus(self) -> int:
        """GPUs of one distributed (detection/segmentation) training: one process without a
        launcher, else ``--gpus-per-job`` (default: all ``--gpus``)."""
        if self.launcher == "none":
            return 1
        return self.gpus_per_job or self.gpus or 1
