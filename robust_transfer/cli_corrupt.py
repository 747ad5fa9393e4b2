"""The corruption subcommands of the ``robust-transfer`` CLI: list, corrupt, corrupt-dir, preview.

``robust_transfer.cli`` calls :func:`add_corruption_commands` on its subparsers. Every handler
takes the parsed ``argparse.Namespace`` and returns an exit code; bad input raises ValueError,
which the main CLI prints as one line.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .corruptions import BACKENDS, CORRUPTION_GROUPS, SEVERITIES


def _read_rgb_or_grey(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise ValueError(f"input image {path} does not exist")
    try:
        with Image.open(path) as pil:
            return np.asarray(pil if pil.mode in ("L", "RGB", "RGBA") else pil.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        # (a truncated or malformed file fails while decoding: OSError, or SyntaxError for PNG)
        raise ValueError(f"{path} is not an image Pillow can read ({type(error).__name__})") from None


def _check_output_format(path: str) -> None:
    """Refuse an output name whose extension Pillow cannot write, before the work."""
    from PIL import Image

    Image.init()
    suffix = Path(path).suffix.lower()
    if suffix not in Image.registered_extensions() or \
            Image.registered_extensions()[suffix] not in Image.SAVE:
        raise ValueError(f"--output {path}: Pillow cannot write {suffix or 'a file without an extension'}"
                         " files (use .png or .jpg)")


def _cmd_list(args: argparse.Namespace) -> int:
    for group, names in CORRUPTION_GROUPS.items():
        print(f"{group} ({len(names)}): {' '.join(names)}")
    print(f"severities: {' '.join(map(str, SEVERITIES))}")
    return 0


def _cmd_corrupt(args: argparse.Namespace) -> int:
    from PIL import Image

    from .corruptions import corrupt
    from .output_paths import check_writable_file

    check_writable_file(args.output, "--output")
    _check_output_format(args.output)
    image = _read_rgb_or_grey(Path(args.image))
    key = args.key if args.key is not None else Path(args.image).name
    out = corrupt(image, args.corruption, args.severity, seed=args.seed, key=key,
                  backend=args.backend)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(out).save(args.output)
    print(f"wrote {args.output} ({args.corruption}, severity {args.severity}, seed {args.seed}, "
          f"key {key!r})")
    return 0


def _cmd_corrupt_dir(args: argparse.Namespace) -> int:
    from .corruptions.export import corrupt_directory
    from .output_paths import check_writable_folder

    if not Path(args.in_dir).is_dir():
        raise ValueError(f"input folder {args.in_dir} does not exist")
    check_writable_folder(args.out_dir, "output folder")
    summary = corrupt_directory(args.in_dir, args.out_dir, args.corruptions, args.severities,
                                seed=args.seed, backend=args.backend,
                                progress=not args.no_progress, output_format=args.format)
    print(f"wrote {summary['written']}, skipped {summary['skipped']} already done, of "
          f"{summary['total']}; manifest {summary['manifest']}")
    return 0


def _cmd_preview(args: argparse.Namespace) -> int:
    from .corruptions.preview import make_backend_comparison_grid, make_preview_grid
    from .output_paths import check_writable_file

    check_writable_file(args.output, "--output")
    _check_output_format(args.output)
    if args.image is None:
        import skimage.data

        image = skimage.data.astronaut()  # a real photograph shipped with scikit-image
        if args.size:
            from PIL import Image

            image = np.asarray(Image.fromarray(image).resize((args.size, args.size), Image.LANCZOS))
    else:
        image = _read_rgb_or_grey(Path(args.image))
    if args.compare_backends:
        make_backend_comparison_grid(image, args.corruptions, args.severities or [1, 3, 5],
                                     args.output, seed=args.seed)
    else:
        make_preview_grid(image, args.corruptions, args.severities or [3], args.output,
                          seed=args.seed, backend=args.backend)
    print(f"wrote {args.output}")
    return 0


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0,
                        help="global seed; with the image key it fixes every random draw (default 0)")
    parser.add_argument("--backend", choices=BACKENDS, default="numpy",
                        help="implementation: numpy (the reference) or torch (batched, fast; "
                             "same corruptions, its own random draws)")


def add_corruption_commands(subparsers) -> None:
    """Register ``list``, ``corrupt``, ``corrupt-dir`` and ``preview`` on ``subparsers``."""
    groups = ", ".join(CORRUPTION_GROUPS)

    p = subparsers.add_parser("list", help="print the corruption groups and names")
    p.set_defaults(func=_cmd_list)

    p = subparsers.add_parser("corrupt", help="corrupt one image")
    p.add_argument("image", help="input image file (PNG, JPEG, ...)")
    p.add_argument("--corruption", required=True, help="corruption name (see `list`)")
    p.add_argument("--severity", type=int, default=3, choices=SEVERITIES,
                   help="severity 1..5 (default 3)")
    p.add_argument("--key", default=None,
                   help="image key for the random stream (default: the input's file name)")
    p.add_argument("-o", "--output", required=True, help="output image file")
    _add_common(p)
    p.set_defaults(func=_cmd_corrupt)

    p = subparsers.add_parser("corrupt-dir",
                              help="corrupt a folder into OUT_DIR/<corruption>/<severity>/... "
                              "(each image keyed by its file name)")
    p.add_argument("in_dir", help="folder of clean images (searched recursively)")
    p.add_argument("out_dir", help="output folder (ImageNet-C layout plus manifest.json)")
    p.add_argument("--corruptions", nargs="+", default=["benchmark"],
                   help=f"corruption names and/or groups ({groups}) (default benchmark)")
    p.add_argument("--severities", nargs="+", type=int, default=list(SEVERITIES),
                   choices=SEVERITIES, help="severities to write (default 1 2 3 4 5)")
    p.add_argument("--format", choices=["same", "png"], default="same",
                   help="same (default): keep each input's format (JPEG written at quality 95); "
                   "png: lossless colour PNGs, what the detection/segmentation tools' "
                   "--corrupted-root needs for results identical to corrupting on the fly")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_common(p)
    p.set_defaults(func=_cmd_corrupt_dir)

    p = subparsers.add_parser("preview", help="render a labelled grid of corruptions (PNG)")
    p.add_argument("image", nargs="?", default=None,
                   help="input image (default: scikit-image's astronaut photograph)")
    p.add_argument("--corruptions", nargs="+", default=["all"],
                   help=f"corruption names and/or groups ({groups}) (default all)")
    p.add_argument("--severities", nargs="+", type=int, default=None, choices=SEVERITIES,
                   help="severities, one column each (default 3; 1 3 5 with --compare-backends)")
    p.add_argument("--size", type=int, default=160,
                   help="side the default photograph is resized to (default 160; 0 keeps 512)")
    p.add_argument("-o", "--output", default="preview.png", help="output PNG (default preview.png)")
    p.add_argument("--compare-backends", action="store_true",
                   help="numpy reference and torch backend side by side (--backend is ignored)")
    _add_common(p)
    p.set_defaults(func=_cmd_preview)
