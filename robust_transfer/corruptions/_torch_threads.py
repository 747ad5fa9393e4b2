"""CPU threads of the torch backend: per-image CPU work (Pillow, OpenCV) and batch parts.

Libjpeg, Pillow and OpenCV release the GIL, so per-image work runs in parallel threads; a CPU
batch is split into parts taken by the calling thread and a kept pool (see
``_torch.corrupt_tensor``). No draw happens in here, so the threading cannot change a result.
"""
from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch



def map_images(fn, count: int) -> list:
    """[fn(0), ..., fn(count-1)] for CPU-only per-image work (JPEG coding, OpenCV), in up to
    ``torch.get_num_threads()`` threads: libjpeg and OpenCV release the GIL, so the threads run
    in parallel (the kept :func:`cpu_pool`, not a new pool per call). No draw happens inside,
    so the threading cannot change a result."""
    workers = min(count, torch.get_num_threads(), os.cpu_count() or 1)
    if workers <= 1:
        return [fn(i) for i in range(count)]
    return list(cpu_pool(workers).map(fn, range(count)))



def pillow_per_image(x: torch.Tensor, fn) -> torch.Tensor:
    """(N, 3, H, W) uint8 through ``fn`` ((H, W, 3) uint8 array -> same) one image per task in
    the CPU threads (Pillow releases the GIL), with one layout copy of the batch each way."""
    images = x.permute(0, 2, 3, 1).contiguous().cpu().numpy()
    out = np.stack(map_images(lambda i: fn(images[i]), len(images)))
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(x.device).contiguous()


def usable_cpu_threads(threads: int) -> int:
    """How many of ``threads`` CPU threads can get a core of their own now: the cores minus the
    1-minute load average (which counts this thread), at least 1 -- what OpenMP's dynamic
    mode (OMP_DYNAMIC) does with libgomp. A thread without a core of its own only makes the
    others wait for it; the bytes do not depend on the choice."""
    if threads <= 1:
        return 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        return threads
    cores = os.cpu_count() or threads
    free = cores - load + 1
    return max(1, min(threads, cores, int(free + 0.5)))


def with_intra_op_threads(threads: int, work):
    """work() with ``threads`` intra-op threads in the calling thread (OpenMP's setting is per
    thread), the previous setting restored afterwards."""
    previous = torch.get_num_threads()
    if threads == previous:
        return work()
    torch.set_num_threads(threads)
    try:
        return work()
    finally:
        torch.set_num_threads(previous)


def share_parts(parts: list, work) -> list:
    """[work(part) for part in parts], the parts taken in turn by the calling thread and by
    len(parts) - 1 pool threads, each with one intra-op thread. The caller never waits for a
    part nobody has started: on a busy machine a pool thread may take milliseconds to be
    scheduled, and then the caller simply does more parts itself."""
    results: list = [None] * len(parts)
    finished = [threading.Event() for _ in parts]
    counter = itertools.count()  # next() is atomic in CPython: each part is taken once

    def take_parts():
        while (index := next(counter)) < len(parts):
            try:
                results[index] = (True, work(parts[index]))
            except BaseException as error:  # noqa: BLE001 -- re-raised in the caller
                results[index] = (False, error)
            finally:
                finished[index].set()

    pool = cpu_pool(len(parts) - 1)
    for _ in range(len(parts) - 1):
        pool.submit(take_parts)
    with_intra_op_threads(1, take_parts)
    for event in finished:
        event.wait()
    for ok, value in results:
        if not ok:
            raise value
    return [value for _, value in results]


_CPU_POOLS: dict = {}


def cpu_pool(workers: int) -> ThreadPoolExecutor:
    """A pool of ``workers`` threads that each run torch ops on one intra-op thread, kept for
    the process (a new thread would build a new OpenMP team on its first op: milliseconds per
    call). Keyed by process id too: threads do not survive a fork, so a forked child (a data
    loader worker) gets its own pool instead of one that would never run its tasks."""
    key = (os.getpid(), workers)
    if key not in _CPU_POOLS:
        _CPU_POOLS[key] = ThreadPoolExecutor(max_workers=workers, initializer=torch.set_num_threads,
                                             initargs=(1,), thread_name_prefix="corrupt-cpu")
    return _CPU_POOLS[key]
