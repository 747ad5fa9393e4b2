"""One GPU smoke run: the three tasks trained and evaluated on a GPU, checked against the CPU.

    python -m robust_transfer.gpu_smoke --out outputs/gpu_smoke            # on a CUDA machine
    bash scripts/gpu_smoke.sh [--wheels DIR]                              # set-up, then this

What it does, as a user would (every tool is a subprocess, its log in ``<out>/logs/``):

1. writes the synthetic data sets (COCO, ADE20K, CIFAR-10; ``robust_transfer.datasets``);
2. on CUDA, checks that mmcv has its CUDA ops (nms and RoIAlign on the GPU);
3. trains the tiny Mask R-CNN (``mmdetection/tools/train.py``), the tiny UperNet
   (``mmsegmentation/tools/train.py``) and the tiny CIFAR ResNet
   (``robust-models-transfer/src/main.py``) for a few iterations on ``--device``;
4. evaluates those checkpoints with ``tools/test_robustness.py`` of both frameworks in
   ``--corrupt-on pipeline`` (numpy backend) and ``--corrupt-on batch`` (torch backend) mode,
   and the classifier with its batched on-device corruption path, on the clean cell and a few
   corruptions at one severity -- once on ``--device`` and once on ``--reference-device``;
5. compares every cell's metrics between the two devices, prints the timings and one
   PASS/FAIL line per check, writes ``<out>/summary.json``; the exit status is 1 when any
   tool failed, a check failed or mmcv lacks its CUDA ops.

On a CUDA device the detection and segmentation batch-mode runs pass no ``--corrupt-on`` flag:
the tools' GPU default (batch, torch backend) is what is checked there.

Tolerances (absolute, per cell; :data:`TOLERANCES`). The same checkpoint gives slightly
different numbers on a GPU because (a) cuDNN picks other convolution algorithms and cuBLAS
other reduction orders than the CPU kernels, and on Ampere and newer GPUs cuDNN convolutions run
in TF32 by default (``torch.backends.cudnn.allow_tf32``: a 10-bit mantissa, ~1e-3 relative
error per layer); (b) mmcv's CUDA RoIAlign and nms sum and break ties in another order; (c) in
batch mode the corruption itself runs on the GPU, where the torch backend is within 1 grey level
of the CPU (no pixel off by more than 2, measured for issue 12). Pipeline mode feeds both devices
the same bytes, so only (a) and (b) apply. Such differences move a score or a logit by about
1e-3, which changes a metric only where two candidates are that close: a detection crossing an
IoU threshold or two scores swapping, a pixel or an image whose top two classes nearly tie. On
the smoke's handful of images:

* COCO box and mask AP (0-1 scale), 8 images with 14 objects of 4 classes: one object's match
  flipping at one of the 10 IoU thresholds moves its class's AP there by up to ~1/4, the mean AP
  by ~1/4/10/4 = 0.006; 0.03 allows about five such flips;
* mIoU (percent), 4 images of 64x80: a class region of a few hundred pixels loses ~0.3 points
  of IoU per dozen flipped pixels; 2.0 points. Pixel accuracy aAcc: 1.0 point (~200 pixels);
* CIFAR top-1 (percent), 40 images: one image is 2.5 points; 5.0 allows two flips.

A broken device path (wrong normalisation, resize, colour order or corruption) moves these
metrics by far more, and the device-trained models must first reach :data:`MIN_CLEAN` on clean
data (several times the tolerances), so a broken model cannot pass for lack of anything left to
differ. With ``--device cpu --reference-device cpu`` (the tests) the two runs
must agree exactly. No GPU was available when these were chosen: the summary prints the largest
difference seen per metric so they can be tightened from measurements.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

REPO = Path(__file__).resolve().parents[1]
DET_TOOLS = REPO / "mmdetection" / "tools"
SEG_TOOLS = REPO / "mmsegmentation" / "tools"
CLS_MAIN = REPO / "robust-models-transfer" / "src" / "main.py"
DET_CONFIG = REPO / "mmdetection" / "configs" / "tests" / "mask-rcnn_r18-tiny_fpn_synthetic-coco.py"
SEG_CONFIG = REPO / "mmsegmentation" / "configs" / "tiny" / "upernet_r18-tiny_1xb4-40it_synthetic-ade20k-64x80.py"
MODES = ("pipeline", "batch")
#: metrics compared per task (the first one must be above 0 on clean data: the model learned)
TASK_METRICS = {"detection": ("bbox_mAP", "segm_mAP"), "segmentation": ("mIoU", "aAcc"),
                "classification": ("top1",)}
#: test images per task (val/test split of the synthetic data sets)
NUM_IMAGES = {"detection": 8, "segmentation": 4, "classification": 40}


#: clean values the device-trained models must exceed (``--min-clean-scale`` scales them): several
#: times the tolerances, so a device path that breaks a model (metric near 0) cannot pass the
#: comparison by having nothing left to differ in
MIN_CLEAN = {"bbox_mAP": 0.1, "mIoU": 30.0, "top1": 50.0}


@dataclass(frozen=True)
class Tolerance:
    """The largest absolute difference allowed for ``metric`` between the two devices."""

    metric: str
    max_abs_diff: float
    why: str


TOLERANCES = {t.metric: t for t in (
    Tolerance("bbox_mAP", 0.03, "COCO AP 0-1, 8 images: ~5 IoU-threshold flips of ~0.006"),
    Tolerance("segm_mAP", 0.03, "COCO AP 0-1, 8 images: ~5 IoU-threshold flips of ~0.006"),
    Tolerance("mIoU", 2.0, "percent, 4 images of 64x80: dozens of near-tie pixels"),
    Tolerance("aAcc", 1.0, "percent, 4 images of 64x80: ~200 near-tie pixels"),
    Tolerance("top1", 5.0, "percent, 40 images: two near-tie images"),
)}


@dataclass
class Check:
    """One PASS/FAIL line of the summary."""

    name: str
    passed: bool
    detail: str
    diff: float | None = None
    metric: str | None = None

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.detail}"


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def compare_metric(name: str, metric: str, value, reference, tolerance: Tolerance) -> Check:
    """Compare one metric of one cell; a missing or NaN value fails with its reason."""
    got, ref = _number(value), _number(reference)
    if got is None or ref is None:
        which = "device" if got is None else "reference"
        return Check(name, False, f"{metric} missing or not a number in the {which} results "
                     f"(device {value!r}, reference {reference!r})", metric=metric)
    diff = abs(got - ref)
    passed = diff <= tolerance.max_abs_diff
    return Check(name, passed, f"{metric} {got:.4f} vs {ref:.4f}, |diff| {diff:.4f} "
                 f"{'<=' if passed else '>'} {tolerance.max_abs_diff:g}", diff=diff, metric=metric)


def compare_results(label: str, device_doc: Mapping, reference_doc: Mapping, metrics: Sequence[str],
                    tolerances: Mapping[str, Tolerance] = TOLERANCES) -> list[Check]:
    """One check per (cell of the reference results, metric); a cell the device results lack
    fails, and so does a metric without a tolerance."""
    checks = []
    device_cells = device_doc.get("cells", {})
    for corruption, by_severity in sorted(reference_doc.get("cells", {}).items()):
        for severity, reference_cell in sorted(by_severity.items()):
            name = f"{label} {corruption}@{severity}"
            device_cell = device_cells.get(corruption, {}).get(severity)
            if device_cell is None:
                checks.append(Check(name, False, "cell missing in the device results"))
                continue
            for metric in metrics:
                if metric not in tolerances:
                    checks.append(Check(name, False, f"no tolerance stated for {metric}"))
                    continue
                checks.append(compare_metric(name, metric, device_cell.get(metric),
                                             reference_cell.get(metric), tolerances[metric]))
    if not checks:
        checks.append(Check(label, False, "the reference results hold no cells"))
    return checks


# ----------------------------------------------------------------------------- devices


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
        import torch
        from mmcv.ops import RoIAlign, nms

        boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], device=device)
        _, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7], device=device), iou_threshold=0.5)
        features = torch.arange(2 * 16 * 16, dtype=torch.float32, device=device).reshape(1, 2, 16, 16)
        pooled = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2)(
            features, torch.tensor([[0.0, 2, 2, 10, 10]], device=device))
        torch.cuda.synchronize()
        assert sorted(keep.tolist()) == [0, 2] and pooled.shape == (1, 2, 2, 2), (keep, pooled.shape)
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


# ----------------------------------------------------------------------------- jobs


@dataclass
class Job:
    """One tool run: a subprocess with its log, started once the jobs in ``after`` succeeded."""

    name: str
    device: str
    argv: list[str]
    env: dict[str, str]
    after: tuple[str, ...] = ()
    status: str = "pending"
    seconds: float = 0.0
    log: Path | None = field(default=None, repr=False)


def run_jobs(jobs: Sequence[Job], logs: Path, parallel: int, timeout: float) -> None:
    """Run ``jobs`` respecting ``after``, at most ``parallel`` at once; sets each job's status
    (``ok``, ``failed (exit N)``, ``timed out``, ``not run: X failed``) and seconds."""
    logs.mkdir(parents=True, exist_ok=True)
    pending, running = list(jobs), {}
    by_name = {job.name: job for job in jobs}
    while pending or running:
        for job in list(pending):
            failed = [a for a in job.after if by_name[a].status not in ("ok", "pending", "running")]
            if failed:
                job.status = f"not run: {failed[0]} failed"
                pending.remove(job)
            elif len(running) < parallel and all(by_name[a].status == "ok" for a in job.after):
                job.log = logs / f"{job.name}.log"
                handle = open(job.log, "w")
                print(f"[gpu-smoke] start {job.name}: {' '.join(job.argv)}", file=handle, flush=True)
                running[job.name] = (subprocess.Popen(job.argv, env=job.env, cwd=REPO, stdout=handle,
                                                      stderr=subprocess.STDOUT), handle, time.perf_counter())
                job.status = "running"
                pending.remove(job)
        for name, (proc, handle, start) in list(running.items()):
            job, elapsed = by_name[name], time.perf_counter() - start
            if proc.poll() is None and elapsed > timeout:
                proc.kill()
                proc.wait()
                job.status = "timed out"
            elif proc.poll() is None:
                continue
            else:
                job.status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
            job.seconds = elapsed
            handle.close()
            del running[name]
            print(f"[gpu-smoke] {job.status:>8} {name} ({elapsed:.1f} s)", file=sys.stderr, flush=True)
        if running:
            time.sleep(0.2)


def plan_jobs(args: argparse.Namespace, data: Mapping[str, Path], threads: int) -> list[Job]:
    """The trainings on ``--device`` and the evaluations on both devices."""
    out, python, device, seed = Path(args.out), sys.executable, args.device, str(args.seed)
    base = dict(os.environ, SYNTHETIC_COCO_ROOT=str(data["coco"]))
    train_env = device_env(device, base, threads)
    seg_data = [f"{split}_dataloader.dataset.data_root={data['ade20k']}" for split in ("train", "val", "test")]
    iters = [f"train_cfg.max_iters={args.iters}", f"default_hooks.checkpoint.interval={args.iters}",
             f"randomness.seed={seed}"]
    jobs = [
        Job("train-detection", device, [python, str(DET_TOOLS / "train.py"), str(DET_CONFIG), "--work-dir",
                                str(out / "train" / "detection"), "--cfg-options", *iters, "val_cfg=None",
                                "val_dataloader=None", "val_evaluator=None"], train_env),
        Job("train-segmentation", device, [python, str(SEG_TOOLS / "train.py"), str(SEG_CONFIG), "--work-dir",
                                   str(out / "train" / "segmentation"), "--cfg-options", *iters,
                                   f"train_cfg.val_interval={args.iters}", f"param_scheduler.0.end={args.iters}",
                                   *seg_data], train_env),
        Job("train-classification", device, [python, str(CLS_MAIN), *classification_args(args, data), "--epochs",
                                     str(args.cls_epochs), "--device", _cls_device(device)], train_env),
    ]
    # both evaluations always run, also when the devices are the same (the smoke's own test)
    for tag, run_device in (("device", device), ("reference", args.reference_device)):
        env = device_env(run_device, base, threads)
        for task, tools, config, extra in (("detection", DET_TOOLS, DET_CONFIG, []),
                                           ("segmentation", SEG_TOOLS, SEG_CONFIG, seg_data)):
            checkpoint = out / "train" / task / f"iter_{args.iters}.pth"
            for mode in MODES:
                if mode == "pipeline":
                    flags = ["--corrupt-on", "pipeline", "--backend", "numpy"]
                else:  # on CUDA the tools' default is batch mode: check that default
                    flags = [] if run_device.startswith("cuda") else ["--corrupt-on", "batch"]
                result = out / "eval" / tag / f"{task}_{mode}.pkl"
                jobs.append(Job(f"eval-{task}-{mode}-{tag}", run_device, [
                    python, str(tools / "test_robustness.py"), str(config), str(checkpoint),
                    "--out", str(result), "--corruptions", *args.corruptions, "--severities", "0",
                    str(args.severity), "--seed", seed, *flags, "--work-dir", str(result.parent / f"{task}_{mode}"),
                    "--cfg-options", "default_hooks.runtime_info=None", *extra], env, (f"train-{task}",)))
        jobs.append(Job(f"eval-classification-{tag}", run_device, [
            python, str(CLS_MAIN), *classification_args(args, data), "--eval-only", "1",
            "--eval-corruptions", ",".join(args.corruptions), "--severities", str(args.severity),
            "--corruption-backend", "torch", "--eval-subset", str(NUM_IMAGES["classification"]),
            "--eval-batch-size", "20", "--device", _cls_device(run_device),
            "--results", str(out / "eval" / tag / "classification.json")], env, ("train-classification",)))
    return jobs


def _cls_device(device: str) -> str:
    return "cpu" if device == "cpu" else "cuda"  # cuda:N is mapped by CUDA_VISIBLE_DEVICES


def classification_args(args: argparse.Namespace, data: Mapping[str, Path]) -> list[str]:
    return ["--arch", "resnet_tiny", "--dataset", "cifar10", "--data", str(data["cifar"]),
            "--out-dir", str(Path(args.out) / "train"), "--exp-name", "classification",
            "--input-size", "32", "--batch-size", "32", "--lr", "0.05",
            "--workers", "0", "--no-tqdm", "1", "--log-iters", str(args.cls_epochs), "--seed", str(args.seed)]


def write_data(out: Path, seed: int) -> dict[str, Path]:
    """The three synthetic data sets under ``out/data`` (deterministic in ``seed``)."""
    from .datasets.synthetic import write_synthetic_cifar10
    from .datasets.synthetic_ade20k import write_synthetic_ade20k
    from .datasets.synthetic_coco import write_synthetic_coco

    root = out / "data"
    coco = write_synthetic_coco(root / "coco", num_train=16, num_val=NUM_IMAGES["detection"],
                                image_size=(96, 128), seed=seed)
    ade = write_synthetic_ade20k(root / "ADEChallengeData2016", num_train=8,
                                 num_val=NUM_IMAGES["segmentation"], seed=seed)
    cifar = write_synthetic_cifar10(root / "cifar", num_train=256, num_test=NUM_IMAGES["classification"],
                                    seed=seed)
    return {"coco": coco.root, "ade20k": Path(ade), "cifar": Path(cifar)}


# ----------------------------------------------------------------------------- checks


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def result_checks(args: argparse.Namespace) -> list[Check]:
    """Recorded modes, a model that learned, and device-vs-reference comparisons."""
    out, dev, ref = Path(args.out) / "eval", "device", "reference"
    checks = []
    runs = [(f"{task}/{mode}", f"{task}_{mode}.json", task, mode)
            for task in ("detection", "segmentation") for mode in MODES]
    runs.append(("classification/device-batch", "classification.json", "classification", "device-batch"))
    for label, file, task, mode in runs:
        device_doc, reference_doc = _load(out / dev / file), _load(out / ref / file)
        if device_doc is None or reference_doc is None:
            missing = out / (dev if device_doc is None else ref) / file
            checks.append(Check(label, False, f"no results at {missing} (see the tool's log)"))
            continue
        recorded = (device_doc.get("backend"), device_doc.get("extra", {}).get("corrupt_on"))
        expected = {"pipeline": ("numpy", "pipeline"), "batch": ("torch-batch", "batch"),
                    "device-batch": ("torch", "device-batch")}[mode]
        checks.append(Check(f"{label} recorded", recorded == expected,
                            f"backend {recorded[0]}, corrupt_on {recorded[1]} (expected {expected[0]}, "
                            f"{expected[1]})"))
        primary = TASK_METRICS[task][0]
        clean = _number(device_doc.get("cells", {}).get("clean", {}).get("0", {}).get(primary))
        floor = MIN_CLEAN[primary] * args.min_clean_scale
        checks.append(Check(f"{label} learned on {args.device}", clean is not None and clean > floor,
                            f"clean {primary} {clean} > {floor:g}"))
        checks += compare_results(f"{label} {args.device} vs {args.reference_device}", device_doc,
                                  reference_doc, TASK_METRICS[task])
    return checks


def largest_differences(checks: Sequence[Check]) -> dict[str, float]:
    """The largest |device - reference| per metric over the comparisons that ran."""
    largest: dict[str, float] = {}
    for check in checks:
        if check.metric is not None and check.diff is not None:
            largest[check.metric] = max(largest.get(check.metric, 0.0), check.diff)
    return largest


# ----------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m robust_transfer.gpu_smoke", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Train the tiny detection, segmentation and classification models on a GPU, "
        "evaluate them under corruptions with the tools (--corrupt-on pipeline and batch) on the "
        "GPU and on the CPU, compare the numbers within stated tolerances and print the timings. "
        "Exit status 1 on any failure; without CUDA it prints that it skipped and exits 0.")
    parser.add_argument("--out", required=True, help="folder for data, checkpoints, results, logs "
                        "and summary.json (its data/, train/, eval/ and logs/ are rewritten)")
    parser.add_argument("--device", default="cuda", help="device the models are trained and first "
                        "evaluated on: cuda, cuda:N, or cpu (then everything runs on the CPU: a test "
                        "of the smoke itself)")
    parser.add_argument("--reference-device", default="cpu", help="device the same checkpoints are "
                        "evaluated on again for the comparison")
    parser.add_argument("--iters", type=int, default=100, help="training iterations of the detection "
                        "and segmentation models (100: box AP about 0.3, ten times its tolerance, "
                        "measured on the CPU)")
    parser.add_argument("--cls-epochs", type=int, default=8, help="training epochs of the classifier "
                        "(256 images, batch 32)")
    parser.add_argument("--min-clean-scale", type=float, default=1.0, help="factor on the clean "
                        "values the device-trained models must reach (MIN_CLEAN: box AP 0.1, mIoU 30, "
                        "top-1 50); 0 only asks for a value above 0 (quick runs with few iterations)")
    parser.add_argument("--corruptions", nargs="+", default=["gaussian_noise", "defocus_blur", "contrast"],
                        metavar="NAME", help="corruptions evaluated besides the clean cell")
    parser.add_argument("--severity", type=int, default=3, choices=range(1, 6), metavar="{1..5}",
                        help="the one severity evaluated")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, the trainings and the "
                        "corruptions")
    parser.add_argument("--jobs", type=int, default=min(6, max(1, (os.cpu_count() or 2) // 2)),
                        help="tool processes run at once")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one tool may run")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the smoke; 0 when every check passed (or CUDA is absent), 1 otherwise."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.iters < 1 or args.cls_epochs < 1 or args.jobs < 1:
        parser.error("--iters, --cls-epochs and --jobs must be at least 1")
    for flag, device in (("--device", args.device), ("--reference-device", args.reference_device)):
        if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
            parser.error(f"{flag} {device!r}: expected cpu, cuda or cuda:N")
    from .corruptions import resolve_corruptions

    try:
        args.corruptions = resolve_corruptions(args.corruptions)
    except ValueError as error:
        parser.error(f"--corruptions: {error}")
    skip = cuda_skip_reason(args.device, args.reference_device)
    if skip is not None:
        print(f"gpu smoke: skipped: {skip}")
        return 0
    total_start = time.perf_counter()
    out = Path(args.out).resolve()
    args.out = str(out)
    for part in ("data", "train", "eval", "logs"):
        shutil.rmtree(out / part, ignore_errors=True)
    timings: list[tuple[str, str, float, str]] = []
    start = time.perf_counter()
    data = write_data(out, args.seed)
    timings.append(("write synthetic data", "-", time.perf_counter() - start, "ok"))
    checks: list[Check] = []
    for device in dict.fromkeys((args.device, args.reference_device)):
        if device.startswith("cuda"):
            start = time.perf_counter()
            checks.append(check_mmcv_cuda_ops(device))
            timings.append(("mmcv CUDA ops", device, time.perf_counter() - start,
                            "ok" if checks[-1].passed else "failed"))
    jobs = []
    if all(c.passed for c in checks):
        threads = max(1, (os.cpu_count() or 2) // args.jobs)
        jobs = plan_jobs(args, data, threads)
        run_jobs(jobs, out / "logs", args.jobs, args.timeout)
        for job in jobs:
            timings.append((job.name, job.device, job.seconds, job.status))
            checks.append(Check(f"tool {job.name}", job.status == "ok",
                                job.status + (f" (log: {job.log})" if job.log else "")))
        checks += result_checks(args)
    total = time.perf_counter() - total_start
    report(args, timings, checks, total)
    return 0 if checks and all(c.passed for c in checks) else 1


def report(args: argparse.Namespace, timings, checks: Sequence[Check], total: float) -> None:
    """Print the timing table, the tolerances, every check and the verdict; write summary.json."""
    from .report import terminal_table

    rows = [[name, device, f"{seconds:.1f}", status] for name, device, seconds, status in timings]
    rows.append(["total", "-", f"{total:.1f}", ""])
    print(terminal_table(["stage", "device", "wall s", "status"], rows, " gpu smoke timings "))
    largest = largest_differences(checks)
    print(f"tolerances (|{args.device} - {args.reference_device}| per cell; why: robust_transfer/gpu_smoke.py):")
    for tol in TOLERANCES.values():
        seen = f"{largest[tol.metric]:.4f}" if tol.metric in largest else "n/a"
        print(f"  {tol.metric:9} <= {tol.max_abs_diff:<5g} largest seen {seen:>7}  ({tol.why})")
    for check in checks:
        print(check.line())
    failed = [c for c in checks if not c.passed]
    verdict = "PASS" if checks and not failed else "FAIL"
    print(f"gpu smoke: {verdict}: {len(checks) - len(failed)}/{len(checks)} checks passed, "
          f"{args.device} vs {args.reference_device}, {total:.1f} s; logs in {Path(args.out) / 'logs'}")
    summary = {"verdict": verdict, "device": args.device, "reference_device": args.reference_device,
               "device_name": _device_name(args.device), "total_seconds": round(total, 2),
               "timings": [dict(stage=n, device=d, seconds=round(s, 2), status=st) for n, d, s, st in timings],
               "tolerances": {k: asdict(v) for k, v in TOLERANCES.items()}, "largest_differences": largest,
               "checks": [asdict(c) for c in checks], "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=1))


def _device_name(device: str) -> str:
    if not device.startswith("cuda"):
        return "cpu"
    import torch

    return torch.cuda.get_device_name(torch.device(device))


if __name__ == "__main__":
    sys.exit(main())
