"""The ``robust-transfer reproduce`` command: its flags become one :class:`~.options.Options`."""
from __future__ import annotations

from ..standins import DATA_SCALES
from .options import LAUNCHERS, Options
from .run import run_suite
from .steps import STEP_KINDS
from .suite import MODES, TASKS


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
    add_selection_flags(p)
    p.add_argument("--shard", metavar="I/N",
                   help="evaluate shard I of N of every grid (0-based; Slurm arrays, several "
                        "nodes); rerun without --shard to merge and report")
    p.add_argument("--data-scale", choices=tuple(DATA_SCALES),
                   help="synthetic data sizes of --smoke runs and the demo (robust_transfer."
                        "standins.DATA_SCALES; default: the suite's synthetic.scale)")
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


def add_selection_flags(p) -> None:
    """The flags that choose what a plan holds and where it works (reproduce and status)."""
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
    p.add_argument("--severities", nargs="+", type=int, choices=(1, 2, 3, 4, 5), metavar="S",
                   help="corruption severities of every grid (default: the suite's; the study's "
                        "suites record its setting, severity 1, as its README says: 'we used "
                        "severities=1'); --severities 1 2 3 4 5 for the full benchmark. The "
                        "clean cell is always evaluated")


def add_status_command(sub) -> None:
    """Register ``robust-transfer status`` on the CLI's sub-parsers."""
    p = sub.add_parser(
        "status", help="list the done / stale / pending steps of a suite, with why",
        description="Plan a suite as reproduce would (same selection flags) and list each step: "
                    "done, stale (its output exists, but an input changed since it was made: "
                    "the checkpoint's sha256, the config, the suite entry, the code version, or "
                    "a step it depends on) or pending. Runs nothing.")
    p.add_argument("suite", help="suite YAML (configs/fixed_feature.yaml, ...)")
    p.add_argument("--smoke", action="store_true", help="the suite's smoke section (as reproduce --smoke)")
    p.add_argument("--data-scale", choices=tuple(DATA_SCALES),
                   help="synthetic data sizes of --smoke runs (as reproduce --data-scale)")
    p.add_argument("--shard", metavar="I/N", help="shard I of N of every grid (as reproduce --shard)")
    p.add_argument("--eval-shards", type=int, default=1, metavar="K",
                   help="detection/segmentation grids split into K jobs (as reproduce)")
    add_selection_flags(p)
    p.set_defaults(func=_cmd_status)


def _cmd_status(args) -> int:
    from .status import suite_status

    return suite_status(args.suite, Options(**_plan_fields(args)))


def _cmd_reproduce(args) -> int:
    options = Options(**_plan_fields(args), gpus=args.gpus, gpus_per_job=args.gpus_per_job,
                      launcher=args.launcher, partition=args.partition,
                      cpus_per_task=args.cpus_per_task, time_limit=args.time_limit,
                      base_port=args.base_port, dry_run=args.dry_run, executor=args.executor,
                      jobs=args.jobs, log_dir=args.log_dir, threads=args.threads)
    return run_suite(args.suite, options)


def _plan_fields(args) -> dict:
    """The Options fields that decide what a plan holds, shared by reproduce and status (the
    flags of :func:`add_selection_flags` plus --smoke, --shard, --eval-shards, --data-scale)."""
    return dict(smoke=args.smoke, work_dir=args.work_dir, checkpoint_dir=args.checkpoint_dir,
                backbone_dir=args.backbone_dir, tasks=args.tasks, backbones=args.backbones,
                modes=args.modes, steps=args.steps, shard=args.shard,
                eval_shards=args.eval_shards, data_scale=args.data_scale,
                severities=args.severities)
