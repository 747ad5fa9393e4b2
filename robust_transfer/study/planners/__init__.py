"""The task planners, in a registry keyed by task: adding a task is one planner here (a
:class:`~.base.TaskPlanner`) and one evaluation adapter for its tool."""
from __future__ import annotations

from ..suite import TASKS
from .base import (BackboneSource, EvaluationSteps, ModelSteps, PlanContext, TaskPlanner,
                   trained_checkpoint)
from .classification import CLASSIFICATION
from .openmmlab import DETECTION, SEGMENTATION

PLANNERS: dict[str, TaskPlanner] = {p.task: p for p in (DETECTION, SEGMENTATION, CLASSIFICATION)}
if set(PLANNERS) != set(TASKS):  # a task of the suite schema without a planner, or vice versa
    raise ImportError(f"planners {sorted(PLANNERS)} do not match the tasks {sorted(TASKS)}")

__all__ = ["PLANNERS", "BackboneSource", "EvaluationSteps", "ModelSteps", "PlanContext",
           "TaskPlanner", "trained_checkpoint"]
