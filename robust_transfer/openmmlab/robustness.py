"""``tools/test_robustness.py`` of both frameworks: a corruption x severity grid on one model.

:func:`build_robustness_parser` has mmdet's ``test_robustness.py`` flags plus ``--backend``,
``--corrupt-on``, ``--resume`` and ``--shard i/n``; :func:`robustness_main` wires everything:
the grid runner (atomic per-cell writes, resume, progress with images/s and ETA), the
:class:`~robust_transfer.openmmlab.evaluator.RobustnessEvaluator`, our results JSON, the pickle
layout mmdet's ``robustness_eval.py`` reads, and the P / mPC / rPC prints.

Distributed runs (``--launcher pytorch`` under torchrun, ``slurm`` under srun): every rank
evaluates every cell on its part of the data (mmengine's sampler and evaluator split and gather),
rank 0 writes.

Output files (all paths printed, made absolute):

* results JSON (our schema): ``<--out stem>.json`` when ``--out X.pkl`` is given, else
  ``<work_dir>/robustness_<config stem>.json``; a shard ``i/n`` gets the shard file name of
  :func:`robust_transfer.grid.shard_path`;
* ``--out X.pkl``: the ``{corruption: {severity: {'coco/bbox_mAP': ...}}}`` layout that
  ``robustness_eval.get_results`` reads (written when the clean cell is present).
  Unlike mmdet's tool, ``--out`` is not a dump of raw predictions.

Configs may carry ``transfer = dict(backbone='ant', mode='fixed-feature')``; it fills the
``backbone`` and ``transfer_mode`` fields of the results.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..corruptions import CORRUPTION_GROUPS, resolve_corruptions
from ..grid import (Cell, build_cells, parse_shard, pending_cells, prepare_results, run_grid,
                    select_shard, shard_path)
from ..results import ResultsError, file_sha256, get_cell, new_results, to_mmdet_robustness_pickle
from ..tables import TOOL, ScoreStyle, prc_table, rpc_text, score_text
from .adapter import TaskAdapter
from .batching import add_pace_flags, apply_pace, pace_extra
from .corruption_choice import AUTO, describe_corruption_choice, resolve_backend
from .pipeline import BATCH_BACKEND, CORRUPT_ON, check_test_pipeline, enable_batch_corruption
from .runner import add_runner_flags, drop_pretrained_weights, env_rank, load_tool_config
from .pregenerated import corrupted_root_defaults, prepare_corrupted_root
from .tool_inputs import check_config_file, check_robustness_inputs, exit_with_error

_CORRUPT_ON_HELP = (
    "where images are corrupted. auto (default): batch when the model runs on CUDA (so the GPU "
    "never waits for data-loader workers corrupting on the CPU) unless --backend numpy is given, "
    "pipeline otherwise; printed and recorded in the results (extra.corrupt_on). pipeline: a "
    "Corrupt transform in the data pipeline, per image, right after loading. batch: the whole "
    "collated batch on the model's device (torch backend), in a data preprocessor before "
    "normalisation; the loader delivers the native images and each is resized after the "
    "corruption exactly as the pipeline's Resize would, so the corruption still hits the image at "
    "its stored resolution (same images as pipeline mode with --backend torch, byte for byte on "
    "the CPU). Test pipelines may only load, Resize and pack. Its results are recorded with "
    f"backend '{BATCH_BACKEND}' and never resumed into or merged with pipeline-mode results. The "
    "numpy reference on a GPU: --backend numpy")

# mmdet-style final prints: the line under each heading, rPC as '50.0 %'
_PRINT_STYLE = ScoreStyle(percent=False, missing="n/a", rpc_suffix=" %", flag_incomplete=False)


def build_robustness_parser(task: str, description: str | None = None) -> argparse.ArgumentParser:
    """The flags of mmdet's ``test_robustness.py`` plus ``--backend``, ``--corrupt-on``,
    ``--resume``, ``--shard``."""
    p = argparse.ArgumentParser(
        description=description or f"Evaluate a {task} model under image corruptions "
        "(corruption x severity grid; model built and checkpoint loaded once)")
    p.add_argument("config", help="test config file path")
    p.add_argument("checkpoint", help="checkpoint file")
    p.add_argument("--out", help="write the pickle that mmdet's robustness_eval.py reads here "
                   "(.pkl/.pickle); our results JSON goes next to it with the suffix .json")
    p.add_argument("--corruptions", nargs="+", default=["benchmark"], metavar="NAME",
                   help="corruption names and/or groups (all, benchmark, noise, blur, weather, "
                   "digital, holdout), or None for the clean data only; default: benchmark")
    p.add_argument("--severities", nargs="+", type=int, default=[0, 1, 2, 3, 4, 5],
                   help="severity levels, 0 = clean; default 0 1 2 3 4 5")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the corruptions' random streams (default 0) and of the runner")
    p.add_argument("--backend", choices=[AUTO, "numpy", "torch"], default=AUTO,
                   help="corruption backend. auto (default): torch with --corrupt-on batch (its "
                   "only backend), numpy (the reference) with --corrupt-on pipeline; the choice "
                   "is printed and recorded in the results' backend field")
    p.add_argument("--corrupt-on", choices=[AUTO, *CORRUPT_ON], default=AUTO, help=_CORRUPT_ON_HELP)
    p.add_argument("--resume", action="store_true",
                   help="continue the run in the results file: evaluate only missing cells")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="evaluate only shard I of N of the cells (0-based); merge the shard "
                   "files with `robust-transfer merge`")
    p.add_argument("--show-dir", help="draw predictions into this folder, one subfolder per cell")
    p.add_argument("--final-prints", nargs="+", choices=["P", "mPC", "rPC"], default=["mPC"],
                   help="robustness metrics to print at the end (default mPC)")
    p.add_argument("--final-prints-aggregate", choices=["all", "benchmark"], default="benchmark",
                   help="average over the benchmark corruptions (default) or all of them")
    p.add_argument("--corrupted-root", metavar="DIR",
                   help="read each cell's corrupted images from this tree (written by `robust-transfer "
                   "corrupt-dir IMAGES DIR --format png` with the same --seed and --backend; its "
                   "manifest is checked against the grid before the model is built) instead of "
                   "corrupting on the fly; same results. Not with --corrupt-on batch.")
    add_pace_flags(p)
    add_runner_flags(p, work_dir_help="folder for logs and (without --out) the results JSON")
    return p


def cells_from_args(args: argparse.Namespace) -> list[Cell]:
    """The grid (after ``--shard``) from the parsed flags; ``ValueError`` on bad values."""
    spec = list(args.corruptions)
    if any(str(s).lower() == "none" for s in spec):
        if len(spec) > 1:
            raise ValueError("--corruptions None means clean data only: give it alone")
        cells = build_cells(None, [0])
    else:
        cells = build_cells(resolve_corruptions(spec), args.severities)
    index, count = parse_shard(args.shard)
    shard = select_shard(cells, index, count)
    if not shard:
        raise ValueError(f"--shard {args.shard}: this shard has no cells (the grid has {len(cells)})")
    return shard


def output_paths(args: argparse.Namespace, work_dir: str, model: str) -> tuple[Path, Path | None]:
    """(results JSON, mmdet pickle or None), absolute; shard files named by the grid module."""
    def sharded(path: Path) -> Path:
        return path if args.shard in (None, "") else shard_path(path, *parse_shard(args.shard))

    if args.out:
        if not args.out.endswith((".pkl", ".pickle")):
            raise ValueError(f"--out {args.out!r}: the file must end with .pkl or .pickle")
        pkl = sharded(Path(args.out).resolve())
        return pkl.with_suffix(".json"), pkl
    return sharded(Path(work_dir).resolve() / f"robustness_{model}.json"), None


def load_robustness_config(args: argparse.Namespace, adapter: TaskAdapter) -> Any:
    """The config with ``--cfg-options``, work_dir, launcher, checkpoint and task tweaks (and,
    with ``--corrupt-on batch``, the batch-mode pipeline and preprocessor)."""
    cfg = load_tool_config(args, adapter)
    if args.seed is not None:
        cfg.randomness = dict(seed=args.seed)
    drop_pretrained_weights(cfg)
    if adapter.prepare_config is not None:
        adapter.prepare_config(cfg)
    if adapter.check_evaluator is not None:
        adapter.check_evaluator(cfg)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    apply_pace(cfg, args)
    if args.show_dir:
        if adapter.configure_show is None:
            raise ValueError(f"--show-dir is not supported for the {adapter.task} task")
        # with per-cell folders the config only turns drawing on
        adapter.configure_show(cfg, None if adapter.set_show_dir else str(Path(args.show_dir).resolve()))
    if getattr(args, "corrupt_on", "pipeline") == "batch":
        enable_batch_corruption(cfg, seed=0 if args.seed is None else args.seed)
    return cfg


def make_results(args: argparse.Namespace, cfg: Any, adapter: TaskAdapter, headlines: Sequence[str]) -> dict:
    """A results document (no cells) describing this evaluation."""
    transfer = cfg.get("transfer") or {}
    corrupt_on = getattr(args, "corrupt_on", "pipeline")
    extra = {"corruptions": list(args.corruptions), "severities": list(args.severities),
             "framework_config": str(Path(args.config).resolve()), "corrupt_on": corrupt_on,
             **pace_extra(cfg, args)}
    if getattr(args, "corrupted_root", None):
        extra["corrupted_root"] = str(Path(args.corrupted_root).resolve())
    if getattr(args, "corruption_defaults", None):
        extra["corruption_defaults"] = dict(args.corruption_defaults)
    if args.shard:
        extra["shard"] = args.shard
    return new_results(
        task=adapter.task, model=Path(args.config).stem, metrics=headlines,
        backbone=transfer.get("backbone"), transfer_mode=transfer.get("mode"),
        config=Path(args.config).name, checkpoint=str(Path(args.checkpoint).resolve()),
        checkpoint_sha256=file_sha256(args.checkpoint), dataset=adapter.dataset_description(cfg),
        seed=0 if args.seed is None else args.seed,
        backend=BATCH_BACKEND if corrupt_on == "batch" else args.backend,
        metric_scale=adapter.metric_scale, extra=extra)


def _summary_scope(results: Mapping, aggregate: str) -> tuple[list[str], list[int]]:
    """The corruptions of ``aggregate`` this run asked for (else evaluated) and its severities."""
    grid = [Cell(c, int(s)) for c in results["cells"] for s in results["cells"][c]]
    requested = results.get("extra", {}).get("corruptions")
    try:
        run_corruptions = resolve_corruptions(requested) if requested else []
    except ValueError:
        run_corruptions = []
    run_corruptions = run_corruptions or sorted({c.corruption for c in grid if not c.is_clean})
    scope = [c for c in CORRUPTION_GROUPS[aggregate] if c in run_corruptions]
    severities = sorted({int(s) for s in results.get("extra", {}).get("severities", [])} - {0}) \
        or sorted({c.severity for c in grid if not c.is_clean}) or [1, 2, 3, 4, 5]
    return scope, severities


def print_robustness_summary(results: Mapping, adapter: TaskAdapter, prints: Sequence[str] = ("mPC",),
                             aggregate: str = "benchmark", file=None) -> dict:
    """Print P / mPC / rPC of every headline metric, mmdet-style lines for ``prints`` and a
    table with all three. mPC averages the cells evaluated for the corruptions of
    ``aggregate`` in this run (missing cells are listed, never counted as zero).
    Returns ``{metric: Summary}``."""
    from ..metrics import summarize
    from ..report import terminal_table
    from ..results import cells_by_int_severity

    file = file or sys.stdout
    scope, severities = _summary_scope(results, aggregate)
    cells = cells_by_int_severity(results)
    summaries = {m: summarize(cells, m, scope, severities) for m in results["metrics"]}
    scale = float(results.get("metric_scale", 1.0))
    grid_text = (f"{len(scope)} {aggregate} corruption(s) x severities {severities}" if scope
                 else f"no {aggregate} corruption in this run: P only")
    print(f"\nmodel: {results['model']}  ({grid_text})", file=file)
    headings = {"P": "Performance on Clean Data [P]", "mPC": "Mean Performance under Corruption [mPC]",
                "rPC": "Relative Performance under Corruption [rPC]"}
    for metric, s in summaries.items():
        group, name = adapter.print_labels.get(metric, (metric, metric))
        for part in ("P", "mPC", "rPC"):
            if part in prints:
                value = (rpc_text(s.rPC, _PRINT_STYLE) if part == "rPC"
                         else score_text(getattr(s, part), scale, _PRINT_STYLE))
                print(f"{headings[part]} ({group})\n{name:5} {'=>' if part == 'rPC' else '= '} {value}",
                      file=file)
    rows = [([m], {"": (s, scale)}, [str(len(s.missing))]) for m, s in summaries.items()]
    header, body = prc_table(["metric"], [""], rows, style=TOOL, extra_header=["missing cells"])
    print(terminal_table(header, body, f" {results['model']} ({aggregate}) "), file=file)
    return summaries


def robustness_main(argv: Sequence[str] | None, adapter: TaskAdapter) -> dict:
    """The whole ``test_robustness.py``: returns the results document (also on non-zero ranks,
    where it holds the same cells but is not written)."""
    parser = build_robustness_parser(adapter.task)
    args = parser.parse_args(argv)
    try:  # every input checked before the model is built
        check_config_file(args.config)
        cells = cells_from_args(args)
        corrupted_root_defaults(args)
        resolve_backend(args)
        cfg = load_robustness_config(args, adapter)
        headlines = adapter.headlines(cfg)
        json_path, pkl_path = output_paths(args, cfg.work_dir, Path(args.config).stem)
        if not Path(args.checkpoint).is_file():
            raise ValueError(f"checkpoint {args.checkpoint!r} is not a file")
        if args.corrupt_on == "pipeline" and any(not cell.is_clean for cell in cells):
            check_test_pipeline(cfg)  # (batch mode: checked by enable_batch_corruption)
        check_robustness_inputs(args, cfg.work_dir, json_path, pkl_path)
        if args.corrupted_root:
            prepare_corrupted_root(args, cfg, cells, adapter.registry_scope)
        results = prepare_results(make_results(args, cfg, adapter, headlines), json_path, args.resume)
    except (ValueError, ResultsError) as error:
        exit_with_error(parser, str(error))
    is_writer = (env_rank() if args.launcher != "none" else 0) == 0
    if is_writer:
        todo = len(pending_cells(cells, results))
        print(f"[robustness] {adapter.task}: {len(cells)} cell(s), {todo} to evaluate; results -> "
              f"{json_path}" + (f"; mmdet pickle -> {pkl_path}" if pkl_path and adapter.pickle_prefix else ""),
              file=sys.stderr, flush=True)
        print(describe_corruption_choice(args), file=sys.stderr, flush=True)
    if pending_cells(cells, results):
        results, is_writer = _evaluate_grid(args, cfg, adapter, cells, results, json_path, headlines)
    if is_writer:
        finish(results, adapter, args, pkl_path)
    return results


def _evaluate_grid(args: argparse.Namespace, cfg: Any, adapter: TaskAdapter, cells: Sequence[Cell],
                   results: dict, json_path: Path, headlines: Sequence[str]) -> tuple[dict, bool]:
    """Build the evaluator and run the pending cells; ``(results, whether this rank writes)``."""
    from .evaluator import RobustnessEvaluator

    evaluator = RobustnessEvaluator(cfg, adapter, seed=results["seed"], backend=args.backend,
                                    show_dir=str(Path(args.show_dir).resolve()) if args.show_dir else None,
                                    headlines=headlines, corrupt_on=args.corrupt_on)
    is_writer = evaluator.rank == 0
    barrier = None
    if evaluator.world_size > 1:
        from mmengine.dist import barrier
    timings: dict[str, float] = {"start": time.perf_counter()}

    def on_cell(cell: Cell, metrics: Mapping[str, float]) -> None:
        now = time.perf_counter()
        elapsed, timings["start"] = now - timings["start"], now
        if is_writer:
            shown = " ".join(f"{m}={metrics[m]:.4g}" for m in headlines)
            print(f"[robustness] {cell}: {shown} ({elapsed:.1f} s, "
                  f"{evaluator.num_images / max(elapsed, 1e-9):.1f} img/s)", file=sys.stderr, flush=True)

    results = run_grid(cells, evaluator.evaluate, results, json_path, resume=args.resume,
                       write=is_writer, images_per_cell=evaluator.num_images,
                       progress=is_writer, on_cell=on_cell, barrier=barrier)
    if barrier is not None:
        barrier()
    return results, is_writer


def write_mmdet_pickle(results: dict, adapter: TaskAdapter, args: argparse.Namespace, pkl_path: Path) -> None:
    """The pickle mmdet's ``robustness_eval.py`` reads, when this run can make one (whole grid,
    clean cell present); otherwise a line saying why not."""
    if parse_shard(args.shard)[1] > 1:
        print(f"[robustness] shard {args.shard}: {pkl_path} not written; merge the shards "
              "(`robust-transfer merge`), then `robust-transfer export-mmdet`", file=sys.stderr)
    elif get_cell(results, "clean", 0) is None:
        print(f"[robustness] no clean cell (severity 0) in this run: {pkl_path} not written "
              "(mmdet's layout needs it)", file=sys.stderr)
    elif set(results["cells"]) == {"clean"}:  # --corruptions None: mmdet's tool names it 'None'
        import pickle

        clean = {f"{adapter.pickle_prefix}/{k}": v for k, v in get_cell(results, "clean", 0).items()}
        pkl_path.parent.mkdir(parents=True, exist_ok=True)
        with open(pkl_path, "wb") as handle:
            pickle.dump({"None": {0: clean}}, handle)
        print(f"[robustness] wrote {pkl_path}", file=sys.stderr)
    else:
        to_mmdet_robustness_pickle(results, pkl_path, prefix=adapter.pickle_prefix)
        print(f"[robustness] wrote {pkl_path}", file=sys.stderr)


def finish(results: dict, adapter: TaskAdapter, args: argparse.Namespace, pkl_path: Path | None) -> None:
    """Write the mmdet pickle (when asked and possible) and print the summary."""
    if pkl_path is not None and adapter.pickle_prefix:
        write_mmdet_pickle(results, adapter, args, pkl_path)
    print("\nAggregated results:")
    print_robustness_summary(results, adapter, args.final_prints, args.final_prints_aggregate)
