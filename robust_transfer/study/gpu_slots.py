"""The GPUs and master ports of one node, handed out to the commands of a plan.

A GPU is a resource of the executor: a step that needs ``n`` GPUs starts only when ``n`` ids of
the node are free, runs with ``CUDA_VISIBLE_DEVICES`` set to exactly those ids, and gives them
back when it ends, so no two running steps ever share a GPU. A torchrun step also takes a
master port (``PORT`` of ``tools/dist_*.sh``) no other running step holds, so two distributed
jobs on the node do not rendezvous with each other.

Which GPU a command runs on never changes its numbers: every random stream of the study is
seeded per cell and image, not per device or process.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

DEFAULT_BASE_PORT = 29500  # torchrun's own default, the first port handed out


def node_gpu_ids(count: int, environ: Mapping[str, str] | None = None) -> list[str]:
    """The ids of the node's first ``count`` GPUs: the entries of an inherited
    ``CUDA_VISIBLE_DEVICES`` (what Slurm or a container grants) or else ``0 .. count-1``."""
    if count < 1:
        raise ValueError(f"--gpus must be >= 1, got {count}")
    environ = os.environ if environ is None else environ
    visible = [v.strip() for v in environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if not visible:
        return [str(i) for i in range(count)]
    if len(visible) < count:
        raise ValueError(f"--gpus {count}, but CUDA_VISIBLE_DEVICES grants only "
                         f"{len(visible)} ({','.join(visible)})")
    return visible[:count]


@dataclass(frozen=True)
class Placement:
    """Where one step runs: its GPU ids and, for torchrun, its master port."""

    gpus: tuple[str, ...] = ()
    port: int | None = None

    def env(self) -> dict[str, str]:
        """The environment variables that pin a command to this placement."""
        env = {}
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpus)
        if self.port is not None:
            env["PORT"] = str(self.port)
        return env


class GpuSlots:
    """Free GPU ids and master ports of a node; ``take`` and ``give_back`` are the only way a
    step gets or returns them."""

    def __init__(self, gpu_ids: Sequence[str], base_port: int = DEFAULT_BASE_PORT):
        if not gpu_ids:
            raise ValueError("a node needs at least one GPU id")
        if len(set(gpu_ids)) != len(gpu_ids):
            raise ValueError(f"GPU ids repeat: {','.join(gpu_ids)}")
        self.gpu_ids = list(gpu_ids)
        self.base_port = int(base_port)
        self._free = list(gpu_ids)
        self._ports: set[int] = set()

    @property
    def size(self) -> int:
        return len(self.gpu_ids)

    def take(self, gpus: int, torchrun: bool = False) -> Placement | None:
        """A placement with ``gpus`` free ids (lowest first) and, for ``torchrun``, the lowest
        free port from the base; None while not enough GPUs are free."""
        if gpus > self.size:
            raise ValueError(f"a step needs {gpus} GPUs; the node has {self.size} (--gpus)")
        if gpus > len(self._free):
            return None
        ids = tuple(self._free[:gpus])
        del self._free[:gpus]
        port = None
        if torchrun:
            port = self.base_port
            while port in self._ports:
                port += 1
            self._ports.add(port)
        return Placement(ids, port)

    def give_back(self, placement: Placement) -> None:
        """Return a finished step's GPUs and port (GPUs keep the node's order)."""
        self._free = [g for g in self.gpu_ids if g in self._free or g in placement.gpus]
        self._ports.discard(placement.port)


def simulate_placements(steps: Sequence, slots: GpuSlots, jobs: int,
                        is_done: Callable[[object], bool]) -> dict[str, Placement]:
    """The placement each step would get if every step took equally long (what ``--dry-run``
    prints): as the executor does, steps start in plan order once their dependencies have
    finished, at most ``jobs`` at a time and only on free GPUs; when none can start, the
    oldest running one finishes. Steps need ``id``, ``deps``, ``gpus`` and ``torchrun``
    attributes; finished ones (``is_done``) and steps without GPUs get no placement."""
    pending = [s for s in steps if not is_done(s)]
    finished = {s.id for s in steps if is_done(s)}
    known = {s.id for s in steps}
    running: list[tuple[str, Placement]] = []  # oldest first
    placed: dict[str, Placement] = {}
    while pending:
        for step in list(pending):
            if len(running) >= jobs:
                break
            if any(d in known and d not in finished for d in step.deps):
                continue
            placement = slots.take(step.gpus, step.torchrun) if step.gpus else Placement()
            if placement is None:
                continue
            pending.remove(step)
            running.append((step.id, placement))
            if step.gpus:
                placed[step.id] = placement
        if not running:
            break  # dependencies no step provides (the executor skips those steps)
        sid, placement = running.pop(0)
        slots.give_back(placement)
        finished.add(sid)
    return placed
