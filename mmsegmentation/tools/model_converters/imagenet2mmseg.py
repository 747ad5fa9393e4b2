#!/usr/bin/env python
"""Convert an ImageNet checkpoint (the study's or a registered one) to the backbone file an mmseg config loads.

    python tools/model_converters/imagenet2mmseg.py --backbone ant ANT_FILE.pth
    python tools/model_converters/imagenet2mmseg.py --backbone swin_t swin_tiny_patch4_window7_224.pth
    python tools/model_converters/imagenet2mmseg.py --backbone l2_eps3 resnet50_l2_eps3.ckpt OUT.pth
    python tools/model_converters/imagenet2mmseg.py --backbones my_backbones.yaml --backbone my_r18 my_r18.pth
    python tools/model_converters/imagenet2mmseg.py my_resnet101.pth OUT.pth   # ResNet read off the keys

Without DST the file goes where the configs look for it: mmsegmentation/checkpoints/<the
backbone's mmseg file>. Checkpoint layouts are read by robust_transfer.backbones.formats and the
files written by robust_transfer.backbones.mmseg, after checking keys and shapes; any torchvision-
or timm-layout ResNet converts (docs/own-backbone.md). Bad input: one line, exit status 2.
"""
import argparse
import sys
from pathlib import Path

from robust_transfer.backbones import SUPPORTED_FORMATS, CheckpointError, get_backbone
from robust_transfer.backbones.catalogue import load_user_backbones

CHECKPOINT_DIR = Path(__file__).resolve().parents[2] / "checkpoints"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="the ImageNet checkpoint file")
    parser.add_argument("dst", nargs="?", help=f"output file (default: {CHECKPOINT_DIR}/<the "
                                               "backbone's mmseg file>; required without --backbone)")
    parser.add_argument("--backbone", default=None, metavar="ID",
                        help="catalogue id SRC is: one of the study's (regular, ant, ..., swin_t) "
                             "or one registered in --backbones")
    parser.add_argument("--backbones", default=None, metavar="YAML",
                        help="a user 'backbones:' file to register before looking up --backbone "
                             "(docs/own-backbone.md)")
    parser.add_argument("--arch", default=None,
                        help="the architecture (default: the backbone's, or read off the keys; "
                             "swin_t for Swin files without --backbone)")
    parser.add_argument("--format", choices=sorted(SUPPORTED_FORMATS), default=None,
                        help="force the source layout instead of detecting it")
    parser.add_argument("--unsafe-load", action="store_true",
                        help="torch.load with weights_only=False (only for files you trust)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from robust_transfer.backbones.mmseg import save_mmseg_backbone  # (imports torch)

    try:
        if args.backbones:
            load_user_backbones(args.backbones)
        if args.dst is None and args.backbone is None:
            raise ValueError("give DST, or --backbone ID to write the backbone's default file")
        dst = Path(args.dst) if args.dst else CHECKPOINT_DIR / get_backbone(args.backbone).mmseg_file
        fmt = save_mmseg_backbone(args.backbone, args.src, dst, fmt=args.format, arch=args.arch,
                                  weights_only=not args.unsafe_load)
    except (CheckpointError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.src} ({fmt} layout) -> {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
