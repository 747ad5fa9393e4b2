"""The study: a benchmark suite (``configs/*.yaml``) becomes a plan of commands that convert the
ImageNet backbones, train every (task, backbone, transfer mode), evaluate each on the corruption
grid and write the report; the plan is printed (``--dry-run``) or executed.

Modules, in the order a newcomer reads them:

* :mod:`.suite` -- the suite as typed dataclasses, validated on load (``smoke:`` overlay);
* :mod:`.options` -- every run setting of ``robust-transfer reproduce`` in one dataclass;
* :mod:`.layout` -- where everything lands in the work dir (planner and demo share it);
* :mod:`.steps` -- typed steps (kind, task, backbone, mode) and the plan with its preflight;
* :mod:`.planning` and :mod:`.planners` -- the shared steps, and one planner per task in a
  registry (detection and segmentation: one OpenMMLab planner; classification);
* :mod:`.launchers` -- none / torchrun / Slurm command lines;
* :mod:`.executor`, :mod:`.forking`, :mod:`.gpu_slots` -- running the steps, GPUs handed out;
* :mod:`.fingerprint` -- what each step's output was made from, so changed inputs make it stale;
  :mod:`.status` -- done / stale / pending steps of a suite, with why;
* :mod:`.run` -- plan, preflight, print or execute; :mod:`.cli` -- the ``reproduce`` and
  ``status`` commands.
"""
from .options import Options
from .planning import build_plan
from .run import print_plan, run_suite
from .steps import PYTHON, Plan, Step
from .suite import MODES, TASKS, Suite, SuiteError, load_suite

__all__ = ["MODES", "Options", "PYTHON", "Plan", "Step", "Suite", "SuiteError", "TASKS",
           "build_plan", "load_suite", "print_plan", "run_suite"]
