"""The GPU smoke's devices: whether CUDA is there, mmcv's CUDA ops, a tool's environment."""
from __future__ import annotations

import os
from typing import Mapping

from .compare import Check
from .paths import REPO

def cuda_skip_reason(device: str, reference_device: str) -> str | None:
    """Why this machine cannot run the smoke on these devices (None: it can)."""
    if not any(d.startswith("cuda") for d in (device, reference_device)):
        return None
    import torch

    if torch.cuda.is_available():
        return None
    build = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
    return f"torch.cuda.is_available() is False (torch {torch.__version__}, {build}): no GPU to test"


def check_mmcv_cuda_ops(device: str) -> Check:
    """nms and RoIAlign of mmcv on ``device``: they fail when mmcv was built without CUDA ops."""
    try:
        from ..environment import run_ops

        run_ops(device)  # the set-up's own check of the compiled ops (scripts/setup.sh)
    except Exception as error:  # noqa: BLE001 -- any failure here means the same thing
        return Check("mmcv CUDA ops", False, f"nms/RoIAlign on {device} failed ({type(error).__name__}: "
                     f"{str(error).splitlines()[0] if str(error) else ''}): rebuild mmcv with its CUDA "
                     "ops (RT_CUDA=1 bash scripts/setup.sh)")
    return Check("mmcv CUDA ops", True, f"nms and RoIAlign ran on {device}")


def device_env(device: str, base: Mapping[str, str], threads: int) -> dict[str, str]:
    """The environment of a tool run on ``device``: ``cpu`` hides every GPU (so mmengine builds
    the model on the CPU), ``cuda:N`` shows only GPU N; one seeded, quiet, N-thread process."""
    env = dict(base, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONWARNINGS="ignore", PYTHONPATH=os.pathsep.join(
                   p for p in (str(REPO), base.get("PYTHONPATH", "")) if p))
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    elif device.startswith("cuda:"):
        index = int(device.split(":", 1)[1])
        visible = [v for v in base.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
        env["CUDA_VISIBLE_DEVICES"] = visible[index] if index < len(visible) else str(index)
    return env


def device_name(device: str) -> str:
    """The GPU's name (``cpu`` for the CPU)."""
    if not device.startswith("cuda"):
        return "cpu"
    import torch

    return torch.cuda.get_device_name(torch.device(device))
