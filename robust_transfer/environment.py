"""The machine the stack is built for: CPU or CUDA ops for mmcv, the wheel-cache key, and the
final check that the compiled ops run where the models will run.

``scripts/setup.sh`` asks this module two things::

    python -m robust_transfer.environment plan    # shell assignments for the mmcv build
    python -m robust_transfer.environment check --ops cuda

CUDA ops are built when ``RT_CUDA=1``, or, with ``RT_CUDA`` unset, when nvcc is found, torch is
a CUDA build *and* a GPU is visible. The issue asked for the first two only, but every machine of
this project's CPU kind has nvcc and a ``+cu130`` torch without any GPU: building CUDA kernels
there would add most of an hour to every cold set-up for ops nothing can run. A cluster whose
build node has no GPU says ``RT_CUDA=1`` and gets :data:`DEFAULT_CUDA_ARCHS` (or its own
``TORCH_CUDA_ARCH_LIST``).
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from typing import Mapping, Sequence

#: Architectures a GPU-less build node compiles for: A100 (8.0) and H100/H200 (9.0). CUDA 13
#: dropped Volta (7.0), so older cards need an older toolkit anyway.
DEFAULT_CUDA_ARCHS = "8.0;9.0"

#: Memory one compiler process may take: nvcc on mmcv's CUDA kernels peaks near 3 GB, g++ on its
#: C++ sources near 1.5 GB. MAX_JOBS never exceeds what the memory allows.
GB_PER_JOB = {"cpu": 1.5, "cuda": 3.0}


class EnvironmentProblem(RuntimeError):
    """The set-up cannot do what was asked on this machine; the message says what to do."""


@dataclass(frozen=True)
class Machine:
    """What the build depends on, read off the machine (see :func:`probe_machine`)."""

    torch_version: str
    torch_cuda: str | None          # torch.version.cuda: None for a CPU-only torch
    nvcc: str | None                # path of nvcc, None when not found
    capabilities: tuple[tuple[int, int], ...]  # compute capability of each visible GPU
    cpu_count: int
    memory_gb: float


@dataclass(frozen=True)
class BuildPlan:
    """How mmcv is built on this machine and under which cache key its wheel is kept."""

    cuda: bool
    reason: str
    arch_list: str | None
    max_jobs: int
    cache_key: str

    def shell(self) -> str:
        """The plan as shell assignments for ``eval`` in setup.sh."""
        values = {"RT_OPS": "cuda" if self.cuda else "cpu", "RT_OPS_REASON": self.reason,
                  "RT_ARCH_LIST": self.arch_list or "", "RT_MAX_JOBS": str(self.max_jobs),
                  "RT_CACHE_KEY": self.cache_key}
        return "\n".join(f"{name}={shlex.quote(value)}" for name, value in values.items())


def _find_nvcc(env: Mapping[str, str]) -> str | None:
    for home in (env.get("CUDA_HOME"), env.get("CUDA_PATH"), "/usr/local/cuda"):
        if home and os.access(os.path.join(home, "bin", "nvcc"), os.X_OK):
            return os.path.join(home, "bin", "nvcc")
    return shutil.which("nvcc", path=env.get("PATH"))


def _memory_gb() -> float:
    try:
        with open("/proc/meminfo") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
        return int(fields["MemAvailable"].split()[0]) / 2**20
    except (OSError, KeyError, ValueError):
        return 8.0


def probe_machine(env: Mapping[str, str] = os.environ) -> Machine:
    """Read torch's build, nvcc, the visible GPUs, the cores and the free memory."""
    import torch

    count = torch.cuda.device_count() if torch.version.cuda else 0
    capabilities = tuple(torch.cuda.get_device_capability(i) for i in range(count))
    return Machine(torch_version=torch.__version__, torch_cuda=torch.version.cuda,
                   nvcc=_find_nvcc(env), capabilities=capabilities,
                   cpu_count=os.cpu_count() or 1, memory_gb=_memory_gb())


def _wants_cuda(machine: Machine, env: Mapping[str, str]) -> tuple[bool, str]:
    forced = env.get("RT_CUDA", "").strip()
    if forced not in ("", "0", "1"):
        raise EnvironmentProblem(f"RT_CUDA={forced!r}: use 1 (CUDA ops), 0 (CPU ops) or leave it unset")
    if forced == "0":
        return False, "RT_CUDA=0"
    missing = [what for what, ok in (("nvcc (set CUDA_HOME or PATH)", machine.nvcc),
                                     ("a CUDA build of torch", machine.torch_cuda)) if not ok]
    if forced == "1":
        if missing:
            raise EnvironmentProblem(f"RT_CUDA=1 but this machine lacks {' and '.join(missing)}; "
                                     "install the CUDA toolkit or unset RT_CUDA for CPU ops")
        return True, "RT_CUDA=1"
    if missing:
        return False, f"no {' and no '.join(missing)}"
    if not machine.capabilities:
        return False, "nvcc and a CUDA torch but no visible GPU (RT_CUDA=1 builds CUDA ops anyway)"
    return True, f"{len(machine.capabilities)} visible GPU(s), nvcc and torch CUDA {machine.torch_cuda}"


def _arch_list(machine: Machine, env: Mapping[str, str]) -> str:
    if env.get("TORCH_CUDA_ARCH_LIST", "").strip():
        return env["TORCH_CUDA_ARCH_LIST"].strip()
    if machine.capabilities:
        return ";".join(f"{major}.{minor}" for major, minor in sorted(set(machine.capabilities)))
    return DEFAULT_CUDA_ARCHS


def _max_jobs(machine: Machine, env: Mapping[str, str], ops: str) -> int:
    if env.get("MAX_JOBS", "").strip():
        try:
            return max(1, int(env["MAX_JOBS"]))
        except ValueError:
            raise EnvironmentProblem(f"MAX_JOBS={env['MAX_JOBS']!r} is not a whole number") from None
    by_memory = int(machine.memory_gb // GB_PER_JOB[ops])
    return max(1, min(machine.cpu_count, by_memory))


def cache_key(torch_version: str, torch_cuda: str | None, arch_list: str | None) -> str:
    """Folder of the wheel cache for one mmcv build: a CPU-only wheel and CUDA wheels for other
    architectures or another CUDA never share a folder, so one is never taken for the other."""
    if arch_list is None:
        return f"torch-{torch_version}/cpu"
    archs = "_".join(re.sub(r"[^0-9A-Za-z]+", "", part) for part in re.split(r"[;\s,]+", arch_list)
                     if part)
    return f"torch-{torch_version}/cuda{torch_cuda}-sm{archs}"


def plan_build(machine: Machine, env: Mapping[str, str] = os.environ) -> BuildPlan:
    """Decide CPU or CUDA ops, the architectures, the parallel jobs and the cache key."""
    cuda, reason = _wants_cuda(machine, env)
    arch_list = _arch_list(machine, env) if cuda else None
    jobs = _max_jobs(machine, env, "cuda" if cuda else "cpu")
    return BuildPlan(cuda=cuda, reason=reason, arch_list=arch_list, max_jobs=jobs,
                     cache_key=cache_key(machine.torch_version, machine.torch_cuda, arch_list))


def run_ops(device: str) -> None:
    """nms and RoIAlign on ``device``, checked against values worked out by hand."""
    import torch
    from mmcv.ops import RoIAlign, nms

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]],
                         dtype=torch.float32, device=device)
    _, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7], device=device), iou_threshold=0.5)
    if keep.cpu().tolist() != [0, 2]:
        raise RuntimeError(f"nms kept {keep.cpu().tolist()}, expected [0, 2]")
    features = torch.ones(1, 2, 8, 8, device=device)
    rois = torch.tensor([[0, 1, 1, 6, 6]], dtype=torch.float32, device=device)
    pooled = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2, aligned=True)(features, rois)
    if pooled.shape != (1, 2, 2, 2) or not torch.allclose(pooled.cpu(), torch.ones(1, 2, 2, 2)):
        raise RuntimeError(f"RoIAlign of a constant map gave {pooled.flatten().tolist()}")


def check_ops(expect: str) -> list[str]:
    """Problems with mmcv's compiled ops on this machine (empty when all is well).

    ``expect`` is the build the set-up asked for (``cpu`` or ``cuda``). The ops always run on
    the CPU; on CUDA as well whenever a GPU is visible and the build was meant for CUDA.
    """
    import torch

    try:
        from mmcv.ops import get_compiling_cuda_version
        run_ops("cpu")
    except Exception as error:  # noqa: BLE001 - any failure means the build is unusable
        return [f"mmcv's compiled ops do not run on the CPU ({type(error).__name__}: {error}); "
                "delete the cached wheel and run scripts/setup.sh again"]
    compiled_cuda = get_compiling_cuda_version()
    if expect != "cuda":
        return []
    if compiled_cuda in ("", "not available"):
        return ["mmcv was built without CUDA ops but CUDA ops were expected; delete the cached "
                "wheel (~/.cache/robust-transfer/wheels) and run scripts/setup.sh again"]
    if not torch.cuda.is_available():
        return []
    try:
        run_ops("cuda")
    except Exception as error:  # noqa: BLE001
        name = torch.cuda.get_device_name(0)
        major, minor = torch.cuda.get_device_capability(0)
        return [f"mmcv's CUDA ops fail on {name} (sm_{major}{minor}): {type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''}; rebuild for this GPU with "
                f"RT_CUDA=1 TORCH_CUDA_ARCH_LIST={major}.{minor} bash scripts/setup.sh"]
    return []


def main(argv: Sequence[str] | None = None) -> int:
    """``plan`` prints the build plan as shell assignments; ``check`` runs the compiled ops."""
    parser = argparse.ArgumentParser(prog="python -m robust_transfer.environment",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("plan", help="print RT_OPS, RT_ARCH_LIST, RT_MAX_JOBS, RT_CACHE_KEY for setup.sh "
                                "(reads RT_CUDA, TORCH_CUDA_ARCH_LIST, MAX_JOBS)")
    check = sub.add_parser("check", help="run nms and RoIAlign on the CPU, and on CUDA when a GPU is "
                                         "visible and --ops cuda")
    check.add_argument("--ops", choices=("cpu", "cuda"), required=True,
                       help="the build the set-up asked for")
    args = parser.parse_args(argv)
    try:
        if args.command == "plan":
            print(plan_build(probe_machine()).shell())
            return 0
        problems = check_ops(args.ops)
    except EnvironmentProblem as problem:
        print(f"[setup] error: {problem}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"[setup] error: {problem}", file=sys.stderr)
    if not problems and not native_philox_built():
        print("[setup] warning: the native Philox module was not built (no C compiler?): the "
              "torch corruptions on the CPU use their tensor-op form, the same numbers ~3x "
              "slower; install gcc and rerun scripts/setup.sh", file=sys.stderr)
    return 1 if problems else 0


def native_philox_built() -> bool:
    """Whether the corruption backend uses the module ``pip install -e .`` compiles from
    ``robust_transfer/corruptions/_philox_native.c`` (built and importable)."""
    from robust_transfer.corruptions import _philox

    return _philox.native is not None


if __name__ == "__main__":
    sys.exit(main())
