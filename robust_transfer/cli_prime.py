"""The PRIME subcommand of the ``robust-transfer`` CLI: ``prime-preview``.

``robust_transfer.cli`` calls :func:`add_prime_commands` on its subparsers. The handler takes
the parsed ``argparse.Namespace`` and returns an exit code; bad input raises ValueError, which
the main CLI prints as one line.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .augment.params import add_prime_arguments, prime_params_from_args


def _load_image(path: str | None, size: int):
    import numpy as np
    from PIL import Image

    if path is None:
        import skimage.data

        image = Image.fromarray(skimage.data.astronaut())  # a real photograph shipped with skimage
        if size:
            image = image.resize((size, size), Image.LANCZOS)
        return np.asarray(image)
    if not Path(path).is_file():
        raise ValueError(f"input image {path} does not exist")
    with Image.open(path) as pil:
        image = pil.convert("RGB")
        if size:
            scale = size / max(image.size)
            if scale < 1:
                image = image.resize((max(1, round(image.width * scale)),
                                      max(1, round(image.height * scale))), Image.LANCZOS)
        return np.asarray(image)


def _cmd_prime_preview(args: argparse.Namespace) -> int:
    from .augment import PRIME
    from .augment.preview import make_prime_grid

    prime = PRIME.from_config(prime_params_from_args(args))
    image = _load_image(args.image, args.size)
    make_prime_grid(image, prime, args.samples, args.output, seed=args.seed, columns=args.columns)
    print(f"wrote {args.output} ({args.samples} PRIME samples, seed {args.seed}; {prime.extra_repr()})")
    return 0


def add_prime_commands(subparsers) -> None:
    """Register ``prime-preview`` on ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    p = subparsers.add_parser(
        "prime-preview", help="render a grid of PRIME samples of an image (PNG)",
        description="Draw PRIME samples of one image (default settings: the study's "
                    "PRIME-during-transfer ones; --prime-preset imagenet for the PRIME paper's) "
                    "and write them, with the clean image, as a labelled PNG grid.")
    p.add_argument("image", nargs="?", default=None,
                   help="input image (default: scikit-image's astronaut photograph)")
    p.add_argument("-o", "--output", default="prime.png", help="output PNG (default prime.png)")
    p.add_argument("--samples", type=int, default=8, help="number of PRIME samples (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the PRIME draws (default 0)")
    p.add_argument("--size", type=int, default=224,
                   help="longest side the image is reduced to (default 224; 0 keeps it)")
    p.add_argument("--columns", type=int, default=3, help="tiles per row (default 3)")
    add_prime_arguments(p, switch=False)
    p.set_defaults(func=_cmd_prime_preview)
