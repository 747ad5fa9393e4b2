"""``robust-transfer``: the command-line front door of the core package.

Sub-commands: ``list``, ``corrupt``, ``corrupt-dir``, ``preview`` (the corruption library),
``demo`` (the embedded default run), ``report``, ``merge``, ``summary`` and ``export-mmdet``
(results files). Bad input ends with a one-line error and exit status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_report(args) -> int:
    from .html_report import load_documents, write_html_report
    from .html_report.inputs import restrict_to_metric
    from .report import load_imagenet_robustness, write_report

    if not args.out and not args.html:
        raise ValueError("give --out DIR (every report file, report.html included) or --html FILE")
    imagenet, imagenet_metric = ({}, "") if not args.imagenet_robustness else \
        load_imagenet_robustness(args.imagenet_robustness)
    documents = load_documents(args.results)
    if args.out:
        written = write_report(restrict_to_metric([d for d, _ in documents], args.metric), args.out,
                               plots=not args.no_plots, corruptions=_scope(args.aggregate),
                               title=args.title, imagenet_robustness=imagenet,
                               imagenet_metric=imagenet_metric)
        print(written["terminal"])
        print(f"report written to {Path(args.out).resolve()}")
    html = write_html_report(documents, args.html or Path(args.out) / "report.html",
                             cards_dir=args.cards, metric=args.metric,
                             corruptions=_scope(args.aggregate), title=args.title,
                             imagenet_robustness=imagenet,
                             imagenet_metric=imagenet_metric or "ImageNet robustness",
                             plots=not args.no_plots)
    for note in html["notes"]:
        print(f"note: {note}")
    print(f"model cards: {Path(html['cards'][0]).parent.resolve()} ({len(html['cards'])} files)")
    print(f"html report: {Path(html['html']).resolve()}")
    return 0


def _cmd_summary(args) -> int:
    from .report import load_many, scope_line, summarize_results, summary_table, terminal_table

    models = [summarize_results(r, _scope(args.aggregate)) for r in load_many(args.results)]
    print(terminal_table(*summary_table(models)))
    print(scope_line(models))
    return 0


def _cmd_merge(args) -> int:
    from .results import load_results, merge_results, save_results

    merged = merge_results(load_results(p) for p in args.shards)
    save_results(merged, args.out)
    cells = sum(len(v) for v in merged["cells"].values())
    print(f"merged {len(args.shards)} files ({cells} cells) into {args.out}")
    return 0


def _cmd_export_mmdet(args) -> int:
    from .results import load_results, to_mmdet_robustness_pickle

    exported = to_mmdet_robustness_pickle(load_results(args.results), args.out, prefix=args.prefix)
    print(f"wrote {len(exported)} corruptions to {args.out} (mmdet robustness_eval.py layout)")
    return 0


def _cmd_demo(args) -> int:
    if args.photos:
        from .demo import run_photo_demo

        run_photo_demo(args.out or "outputs/demo_photos", corruptions=args.corruptions,
                       severities=args.severities, seed=args.seed, backend=args.backend,
                       image_size=args.image_size, resume=not args.fresh)
        return 0
    from .demo import run_demo

    return run_demo(args.out or "outputs/demo", scale=args.scale, jobs=args.jobs, fresh=args.fresh)


def _scope(aggregate: str):
    from .corruptions import get_corruption_names

    return get_corruption_names(aggregate)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="robust-transfer",
        description="Robustness Transfer Benchmark: ImageNet-C corruptions, robustness grids, "
                    "P / mPC / rPC reports.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from .cli_corrupt import add_corruption_commands
    from .cli_prime import add_prime_commands

    add_corruption_commands(sub)
    add_prime_commands(sub)
    from .cli_backbone import add_backbone_commands

    add_backbone_commands(sub)  # backbone list|add, imagenet-c
    from .study.cli import add_reproduce_command, add_status_command

    add_reproduce_command(sub)
    add_status_command(sub)  # done / stale / pending steps of a suite
    _add_report_commands(sub)
    _add_results_commands(sub)
    _add_demo_command(sub)
    return parser


AGGREGATE_HELP = ("corruptions that mPC averages over: benchmark (the 15, as in the papers), "
                  "all (19, with hold-out) or any group name")


def _add_report_commands(sub) -> None:
    """``report`` (tables, plots, HTML page, cards) and ``summary`` (the P / mPC / rPC table)."""
    p = sub.add_parser("report", help="paper-shaped tables (terminal, Markdown, LaTeX, CSV, HTML), "
                                      "plots and model cards",
                       description="Summarise results files, of one suite or several at once: P, "
                                   "mPC, rPC per model and metric, per-corruption tables, long "
                                   "CSV, PNG plots, one self-contained HTML page (report.html) "
                                   "and a JSON model card per model. Not evaluated = '—', never 0.")
    p.add_argument("results", nargs="+",
                   help="results JSON files, or folders searched recursively for them "
                        "(e.g. work_dirs/*/results: the suites' tables side by side)")
    p.add_argument("--out", help="folder to write every report file into, report.html and "
                                 "cards/ included (optional with --html)")
    p.add_argument("--html", metavar="FILE",
                   help="the self-contained HTML page to write (default: OUT/report.html); "
                        "with --html alone only the page and the model cards are written")
    p.add_argument("--cards", metavar="DIR",
                   help="folder of the per-model JSON cards (default: cards/ next to the HTML page)")
    p.add_argument("--metric",
                   help="metric of the tables, e.g. bbox_mAP, segm_mAP, mIoU, top1 (default: "
                        "each task's headline metric); results without it are left out")
    p.add_argument("--aggregate", default="benchmark", help=AGGREGATE_HELP)
    p.add_argument("--title", default="Robustness transfer", help="title of the tables and page")
    p.add_argument("--no-plots", action="store_true",
                   help="no PNG plots (the tables and the HTML page's heat maps stay)")
    p.add_argument("--imagenet-robustness", metavar="FILE",
                   help="YAML/JSON with a number per backbone measured on ImageNet (a benchmark "
                        "suite from configs/, or {metric: NAME, values: {backbone: value}}): adds "
                        "its rank correlation with the downstream rPC and scatter plots")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("summary", help="print the P / mPC / rPC table of results files")
    p.add_argument("results", nargs="+", help="results JSON files")
    p.add_argument("--aggregate", default="benchmark", help=AGGREGATE_HELP)
    p.set_defaults(func=_cmd_summary)


def _add_results_commands(sub) -> None:
    """``merge`` (shards of one evaluation) and ``export-mmdet`` (mmdet's pickle)."""
    p = sub.add_parser("merge", help="merge shard results of one evaluation",
                       description="Merge the results files of --shard i/n runs; refuses files "
                                   "of different models, configs, checkpoints, seeds or backends.")
    p.add_argument("shards", nargs="+", help="shard results JSON files")
    p.add_argument("-o", "--out", required=True, help="merged results file to write")
    p.set_defaults(func=_cmd_merge)

    p = sub.add_parser("export-mmdet", help="export results to mmdet's robustness_eval.py pickle",
                       description="Write the pickle layout that mmdet's "
                                   "tools/analysis_tools/robustness_eval.py reads.")
    p.add_argument("results", help="results JSON file")
    p.add_argument("-o", "--out", required=True, help="pickle file to write")
    p.add_argument("--prefix", default="coco", help="metric key prefix (mmdet writes 'coco/bbox_mAP')")
    p.set_defaults(func=_cmd_export_mmdet)


def _add_demo_command(sub) -> None:
    """``demo``: the study in miniature, or the corruptions on photographs (``--photos``)."""
    p = sub.add_parser("demo", help="the embedded default: the whole study in miniature "
                                    "(--photos: the corruptions on real photographs)",
                       description="Runs the benchmark suite configs/demo.yaml through the "
                                   "reproduction runner: synthetic data sets for detection, "
                                   "segmentation and classification; two stand-in ImageNet "
                                   "backbones (plain and noise-augmented pre-training), each "
                                   "transferred fixed-feature and full-network to the three "
                                   "tasks with the real tools; every model evaluated on the 15 "
                                   "benchmark corruptions x 5 severities; paper-shaped tables, "
                                   "plots and the robustness-transfer correlation. Rerunning "
                                   "skips what is done. With --photos: the corruption library "
                                   "on scikit-image's photographs (SSIM / PSNR), tables, plots "
                                   "and a preview grid.")
    p.add_argument("--out", default=None,
                   help="output folder (default: outputs/demo; with --photos outputs/demo_photos)")
    p.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    p.add_argument("--scale", choices=("demo", "ci"), default=None,
                   help="data set sizes (default: $RT_DEMO_SCALE or demo; ci evaluates fewer images)")
    p.add_argument("--jobs", type=int, default=None,
                   help="commands run at once (default 2, one torch thread each)")
    photos = p.add_argument_group("--photos: the corruption library on real photographs")
    photos.add_argument("--photos", action="store_true",
                        help="corrupt scikit-image's photographs instead of running the study")
    photos.add_argument("--corruptions", default="all", help="group or corruption names (default: all 19)")
    photos.add_argument("--severities", nargs="+", type=int, default=[0, 1, 2, 3, 4, 5],
                        help="severities; 0 = clean (default: 0 1 2 3 4 5)")
    photos.add_argument("--seed", type=int, default=0, help="corruption seed (default: 0)")
    photos.add_argument("--backend", default="numpy", help="corruption backend (default: numpy)")
    photos.add_argument("--image-size", type=int, default=224,
                        help="short side the photographs are resized to (default: 224)")
    p.set_defaults(func=_cmd_demo)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, NotImplementedError) as error:
        print(f"robust-transfer {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished cells are saved (rerun with --resume where offered)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
