#!/usr/bin/env python
"""Convert a published ImageNet checkpoint of the study to the backbone file an mmseg config loads.

    python tools/model_converters/imagenet2mmseg.py --backbone ant ANT_FILE.pth
    python tools/model_converters/imagenet2mmseg.py --backbone swin_t swin_tiny_patch4_window7_224.pth
    python tools/model_converters/imagenet2mmseg.py --backbone l2_eps3 resnet50_l2_eps3.ckpt OUT.pth

Without DST the file goes where the paper configs look for it: mmsegmentation/checkpoints/.
ResNet-50 layouts (torchvision, ANT, DeepAugment+AugMix, PRIME, robustness library) are read by
robust_transfer.backbones.formats; the files are written by robust_transfer.backbones.mmseg.
Keys and shapes are checked before writing.
"""
import argparse
import sys
from pathlib import Path

from robust_transfer.backbones import SUPPORTED_FORMATS, CheckpointError, get_backbone, list_backbones
from robust_transfer.backbones.mmseg import save_mmseg_backbone

CHECKPOINT_DIR = Path(__file__).resolve().parents[2] / "checkpoints"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="the published checkpoint file")
    parser.add_argument("dst", nargs="?", help=f"output file (default: {CHECKPOINT_DIR}/<name>)")
    parser.add_argument("--backbone", required=True, choices=sorted(list_backbones()),
                        help="which backbone of the study SRC is")
    parser.add_argument("--format", choices=sorted(SUPPORTED_FORMATS), default=None,
                        help="force the source layout instead of detecting it")
    parser.add_argument("--unsafe-load", action="store_true",
                        help="torch.load with weights_only=False (only for files you trust)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    dst = Path(args.dst) if args.dst else CHECKPOINT_DIR / get_backbone(args.backbone).mmseg_file
    try:
        fmt = save_mmseg_backbone(args.backbone, args.src, dst, fmt=args.format,
                                  weights_only=not args.unsafe_load)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.src} ({fmt} layout) -> {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
