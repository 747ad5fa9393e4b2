"""The own-backbone subcommands of ``robust-transfer``: ``backbone list|add|convert`` and
``imagenet-c``.

``robust_transfer.cli`` calls :func:`add_backbone_commands` on its subparsers. Handlers return
an exit code; bad input raises ValueError (CheckpointError is one), which the main CLI prints
as one line with exit status 2. docs/own-backbone.md walks through them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_BACKBONES_FILE = "backbones.yaml"


def _cmd_backbone_list(args: argparse.Namespace) -> int:
    from .backbones import get_backbone, list_backbones
    from .backbones.catalogue import load_user_backbones

    if args.backbones:
        load_user_backbones(args.backbones)
    for backbone_id in list_backbones():
        entry = get_backbone(backbone_id)
        print(f"{backbone_id:16s} {entry.arch:18s} {entry.format:12s} {entry.checkpoint}")
    return 0


def _cmd_backbone_add(args: argparse.Namespace) -> int:
    """Check the checkpoint (readable, its layout, its architecture), then add the entry."""
    from .backbones.catalogue import read_user_backbones, register_backbone
    from .backbones.classification import AUTO, load_imagenet_backbone
    from .backbones.resnet_family import infer_resnet_spec
    from .output_paths import check_writable_file, write_yaml_atomically
    from .results import file_sha256

    target = check_writable_file(args.backbones, "--backbones")
    entries = read_user_backbones(target)
    if args.id in entries and not args.replace:
        raise ValueError(f"{target} already has backbone {args.id!r} (pass --replace to overwrite it)")
    state_dict, fmt = load_imagenet_backbone(args.checkpoint, args.arch, fmt=args.format,
                                             weights_only=not args.unsafe_load)
    arch = infer_resnet_spec(state_dict, args.checkpoint).name if args.arch == AUTO else args.arch
    checkpoint = Path(args.checkpoint).resolve()
    entries[args.id] = {"arch": arch, "checkpoint": str(checkpoint), "format": fmt,
                        "sha256": file_sha256(checkpoint), "label": args.label or args.id}
    register_backbone(args.id, **entries[args.id])  # validates the id; as loading the file would
    write_yaml_atomically(target, {"backbones": entries})
    print(f"registered {args.id}: {arch}, {fmt} layout, {checkpoint} -> {target}")
    return 0


#: Where ``backbone convert`` writes the classification file (relative to --root).
CLASSIFICATION_CHECKPOINT_DIR = "checkpoints/imagenet"


def _cmd_backbone_convert(args: argparse.Namespace) -> int:
    """The three target files of one catalogued backbone, each checked key for key."""
    from .backbones import get_backbone
    from .backbones.catalogue import load_user_backbones
    from .backbones.classification import export_torchvision
    from .backbones.mmdet import export_mmdet_resnet, export_mmdet_swin
    from .backbones.mmseg import save_mmseg_backbone
    from .output_paths import check_writable_folder
    from .results import file_sha256

    if args.backbones:
        load_user_backbones(args.backbones)
    entry, root = get_backbone(args.id), Path(args.root)
    src = Path(args.checkpoint or entry.checkpoint)
    if not src.is_absolute() and args.checkpoint is None:
        src = Path(args.backbone_dir) / src
    if entry.sha256 and src.is_file() and file_sha256(src) != entry.sha256:
        raise ValueError(f"{src} is not the file registered as {args.id!r} (sha256 differs)")
    targets = {"mmdet": root / entry.mmdet_path, "mmseg": root / entry.mmseg_path,
               "classification": root / CLASSIFICATION_CHECKPOINT_DIR / f"{entry.arch}_{entry.id}_torchvision.pth"}
    for task in args.to:
        check_writable_folder(targets[task].parent, f"{task} folder")
    weights_only = not args.unsafe_load
    for task in args.to:
        if task == "mmdet" and entry.arch == "swin_t":
            export_mmdet_swin(src, targets[task], weights_only=weights_only)
        elif task == "mmdet":
            export_mmdet_resnet(src, targets[task], arch=entry.arch, weights_only=weights_only)
        elif task == "mmseg":
            save_mmseg_backbone(entry.id, src, targets[task], weights_only=weights_only)
        else:
            export_torchvision(src, targets[task], arch=entry.arch, weights_only=weights_only)
        print(f"{args.id} -> {task}: {targets[task]}")
    return 0


def _cmd_imagenet_c(args: argparse.Namespace) -> int:
    from .backbones import get_backbone
    from .backbones.catalogue import load_user_backbones
    from .imagenet_c import imagenet_robustness, run_imagenet_c, update_robustness_file
    from .output_paths import check_writable_file
    from .results import file_sha256

    arch = args.arch
    if args.backbones:
        load_user_backbones(args.backbones)
    if args.backbone:
        entry = get_backbone(args.backbone)
        arch = arch or entry.arch
        if entry.sha256 and Path(args.checkpoint).is_file() and file_sha256(args.checkpoint) != entry.sha256:
            raise ValueError(f"{args.checkpoint} is not the file registered as {args.backbone!r} "
                             "(sha256 differs)")
    backbone_id = args.backbone or Path(args.checkpoint).stem
    out = Path(args.out or f"outputs/imagenet_c/{backbone_id}.json")
    robustness = Path(args.robustness_file or out.parent / "imagenet_robustness.yaml")
    check_writable_file(robustness, "--robustness-file")
    results, path = run_imagenet_c(
        args.checkpoint, args.data, out, backbone_id=backbone_id, arch=arch or "auto",
        fmt=args.format, corruptions=args.corruptions, severities=args.severities, seed=args.seed,
        batch_size=args.batch_size, device=args.device, workers=args.workers, limit=args.limit,
        shard=args.shard, resume=args.resume, weights_only=not args.unsafe_load,
        progress=not args.no_progress)
    clean = results["cells"]["clean"]["0"]["top1"] if "clean" in results["cells"] else None
    print(f"{backbone_id}: clean top-1 {clean if clean is None else round(clean, 2)}%; results {path}")
    value = imagenet_robustness(results, args.robustness_metric)
    if value is None:
        print("the 15 benchmark corruptions are not all evaluated (shard or subset): no "
              "robustness number written; merge the shards (robust-transfer merge) and rerun "
              "with --out MERGED --resume to write it", file=sys.stderr)
        return 0
    update_robustness_file(robustness, backbone_id, value, args.robustness_metric, results_path=path)
    print(f"{backbone_id}: {args.robustness_metric} {value:.2f} -> {robustness} "
          "(robust-transfer report --imagenet-robustness FILE)")
    return 0


def _add_unsafe_load(parser) -> None:
    parser.add_argument("--unsafe-load", action="store_true",
                        help="torch.load with weights_only=False (only for files you trust)")


def add_backbone_commands(subparsers) -> None:
    """Register ``backbone`` (``list``, ``add``) and ``imagenet-c`` on ``subparsers``."""
    _add_backbone_command(subparsers)
    _add_imagenet_c_command(subparsers)


def _add_backbone_command(subparsers) -> None:
    p = subparsers.add_parser("backbone", help="list the catalogued backbones or register your own",
                              description="The backbone catalogue: the study's backbones and the "
                                          "ones registered in a user 'backbones:' YAML file.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION",
                               help="list: the catalogue; add: register a checkpoint; convert: write its files")
    q = actions.add_parser("list", help="print id, architecture, layout and checkpoint of each")
    q.add_argument("--backbones", default=None, metavar="YAML",
                   help="also list the backbones of this user file")
    q.set_defaults(func=_cmd_backbone_list)
    q = actions.add_parser("add", help="check a checkpoint and register it in a backbones file",
                           description="Reads the checkpoint (weights_only), detects its layout, "
                                       "reads its ResNet architecture off the keys (or --arch), "
                                       "and writes the entry with its sha256.")
    q.add_argument("id", help="the backbone id (used by converters, suites and reports)")
    q.add_argument("checkpoint", help="the ImageNet checkpoint file")
    q.add_argument("--backbones", default=DEFAULT_BACKBONES_FILE, metavar="YAML",
                   help=f"the user backbones file to add to (default {DEFAULT_BACKBONES_FILE})")
    q.add_argument("--arch", default="auto", help="architecture (default auto: a ResNet read off "
                                                  "the keys; swin_t must be given)")
    q.add_argument("--format", default=None, help="checkpoint layout (default: detected)")
    q.add_argument("--label", default=None, help="the name in tables and plots (default: the id)")
    q.add_argument("--replace", action="store_true", help="overwrite an entry of the same id")
    _add_unsafe_load(q)
    q.set_defaults(func=_cmd_backbone_add)
    q = actions.add_parser("convert", help="write a backbone's mmdet, mmseg and classification files",
                           description="Converts a catalogued backbone's checkpoint to the files "
                                       "the detection and segmentation configs and the "
                                       "classification CLI load, each checked key for key.")
    q.add_argument("id", help="the backbone id (the study's or one in --backbones)")
    q.add_argument("--backbones", default=None, metavar="YAML", help="user backbones file to load first")
    q.add_argument("--checkpoint", default=None,
                   help="the ImageNet file (default: the catalogue's, under --backbone-dir)")
    q.add_argument("--backbone-dir", default="checkpoints/imagenet",
                   help="folder of the study's published files (default checkpoints/imagenet)")
    q.add_argument("--to", nargs="+", choices=["mmdet", "mmseg", "classification"],
                   default=["mmdet", "mmseg", "classification"], help="which files (default all three)")
    q.add_argument("--root", default=".", help="repository root the catalogue's paths are relative "
                                               "to (default: the current folder)")
    _add_unsafe_load(q)
    q.set_defaults(func=_cmd_backbone_convert)


def _add_imagenet_c_command(subparsers) -> None:
    from .corruptions import CORRUPTION_GROUPS, SEVERITIES
    from .imagenet_c import ROBUSTNESS_METRICS

    p = subparsers.add_parser(
        "imagenet-c", help="measure a backbone's ImageNet-C top-1 (the correlation's x-axis)",
        description="Top-1 of an ImageNet checkpoint on the ImageNet validation folder, clean and "
                    "under each corruption and severity (resize 256, centre crop 224, corrupted "
                    "after the crop, torch backend); resumable and shardable results, and the "
                    "summary number for `report --imagenet-robustness`.")
    p.add_argument("checkpoint", help="ImageNet checkpoint with its classifier (any supported layout)")
    p.add_argument("--data", required=True, help="ImageNet validation folder (<wnid>/<image>.JPEG)")
    p.add_argument("--backbone", default=None, metavar="ID",
                   help="catalogue id (names the results; default: the checkpoint's file stem)")
    p.add_argument("--backbones", default=None, metavar="YAML", help="user backbones file to load first")
    p.add_argument("--arch", default=None, help="architecture (default: the backbone's, or auto)")
    p.add_argument("--format", default=None, help="checkpoint layout (default: detected)")
    p.add_argument("--corruptions", nargs="+", default=["benchmark"],
                   help=f"corruption names and/or groups ({', '.join(CORRUPTION_GROUPS)}) (default benchmark)")
    p.add_argument("--severities", nargs="+", type=int, default=list(SEVERITIES), choices=SEVERITIES,
                   help="severities (default 1 2 3 4 5, as ImageNet-C; the clean cell is always added)")
    p.add_argument("--seed", type=int, default=0, help="corruption seed (default 0)")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--workers", type=int, default=2, help="data-loading processes (default 2)")
    p.add_argument("--limit", type=int, default=None,
                   help="evaluate this many images, spread evenly over the classes (default all)")
    p.add_argument("--shard", default=None, help="i/n: evaluate every n-th cell from the i-th (0-based)")
    p.add_argument("--out", default=None,
                   help="results JSON (default outputs/imagenet_c/<id>.json)")
    p.add_argument("--resume", action="store_true", help="continue the cells already in --out")
    p.add_argument("--robustness-file", default=None, metavar="YAML",
                   help="file the summary number is added to (default: imagenet_robustness.yaml "
                        "next to --out)")
    p.add_argument("--robustness-metric", choices=list(ROBUSTNESS_METRICS), default="mce",
                   help="summary number: mce (as the study's suites), rpc or mpc (default mce)")
    _add_unsafe_load(p)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=_cmd_imagenet_c)
