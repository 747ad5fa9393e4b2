"""``--backend`` / ``--corrupt-on auto``: which corruption backend, and where images are
corrupted, for a model on a given device. The choice is printed and recorded in the results."""
from __future__ import annotations

import argparse

AUTO = "auto"


def model_device() -> str:
    """The device type mmengine's Runner puts the model on (``'cuda'``, ``'cpu'``, ...)."""
    from mmengine.device import get_device

    return get_device()


def resolve_corruption_defaults(backend: str | None, corrupt_on: str | None,
                                device: str) -> tuple[str, str]:
    """``(backend, corrupt_on)`` with ``auto`` (or None) resolved for a model on ``device``.

    ``corrupt_on`` auto is batch on CUDA, because in pipeline mode the data-loader workers
    corrupt every image on the CPU and the GPU waits for them; elsewhere it stays pipeline (on
    a CPU the batch path saves nothing). An explicit ``--backend numpy`` makes it pipeline on
    CUDA too, so the reference is one flag away. ``backend`` auto follows the mode, whatever
    the device: torch with batch (its only backend), numpy (the reference) with pipeline.
    Batch mode with the numpy backend is a ``ValueError``."""
    backend = AUTO if backend is None else backend
    corrupt_on = AUTO if corrupt_on is None else corrupt_on
    on_cuda = str(device).split(":")[0] == "cuda"
    if corrupt_on == AUTO:
        corrupt_on = "batch" if on_cuda and backend != "numpy" else "pipeline"
    if corrupt_on == "batch":
        if backend not in (AUTO, "torch"):
            raise ValueError(f"--corrupt-on batch corrupts with the torch backend (corrupt_batch on "
                             f"the device); --backend {backend} is only for --corrupt-on pipeline")
        return "torch", corrupt_on
    return ("numpy" if backend == AUTO else backend), corrupt_on


def resolve_backend(args: argparse.Namespace, device: str | None = None) -> str:
    """Resolve ``--backend`` and ``--corrupt-on`` (see :func:`resolve_corruption_defaults`) for
    a model on ``device`` (default: where mmengine will put it). Sets ``args.backend`` and
    ``args.corrupt_on``, records in ``args.corruption_defaults`` which were automatic; returns
    the backend."""
    given = (getattr(args, "backend", None), getattr(args, "corrupt_on", None))
    device = model_device() if device is None else device
    args.backend, args.corrupt_on = resolve_corruption_defaults(*given, device)
    args.corruption_defaults = {"device": str(device),
                                "auto": [flag for flag, value in zip(("backend", "corrupt_on"), given)
                                         if value in (None, AUTO)]}
    return args.backend


def describe_corruption_choice(args: argparse.Namespace) -> str:
    """One line naming the resolved ``--backend`` / ``--corrupt-on`` and which were automatic."""
    defaults = getattr(args, "corruption_defaults", None) or {}
    auto = defaults.get("auto") or []
    why = (f" ({' and '.join('--' + a.replace('_', '-') for a in auto)} auto: model on "
           f"{defaults.get('device', '?')})") if auto else ""
    return f"[robustness] corruptions: --backend {args.backend} --corrupt-on {args.corrupt_on}{why}"
