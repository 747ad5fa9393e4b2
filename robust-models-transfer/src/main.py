"""Transfer ImageNet models to CIFAR-10/100 -- the command line of microsoft/robust-models-transfer
(``src/main.py``) on plain torch/torchvision, plus corruption robustness evaluation.

    python robust-models-transfer/src/main.py --arch resnet50 --dataset cifar10 \\
        --data data/cifar10 --out-dir outdir --exp-name cifar10-l2-eps3-fixed \\
        --epochs 150 --lr 0.01 --step-lr 30 --batch-size 64 --weight-decay 5e-4 \\
        --adv-train 0 --model-path checkpoints/resnet50_l2_eps3.ckpt --freeze-level 4 \\
        --eval-corruptions benchmark --cifar10c-dir data/CIFAR-10-C

This file only parses arguments; the work is done by ``robust_transfer.classification``.
See ``robust-models-transfer/README.md``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robust_transfer.backbones.resnet_family import RESNET_ARCHS  # (no torch: --help stays fast)

_STUDY_ARCHS = ("resnet18", "resnet50", "wide_resnet50_2", "wide_resnet50_4", "swin_t", "resnet_tiny",
                "swin_tiny_test")
# then every other ResNet the backbone converters know (torchvision's and timm's names), in the
# order robust_transfer.classification.models registers them
ARCHS = (*_STUDY_ARCHS, *(arch for arch in RESNET_ARCHS if arch not in _STUDY_ARCHS))


def _severities(text: str) -> list[int]:
    """Parse '1', '1,2' (each token of a space-separated list may hold commas)."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"severities must be integers 1..5, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: robust-models-transfer's flags, then ours."""
    from robust_transfer.backbones.formats import SUPPORTED_FORMATS

    parser = argparse.ArgumentParser(
        prog="main.py", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Fine-tune an ImageNet model on CIFAR-10/100 (fixed-feature or full-network "
                    "transfer) and evaluate its accuracy on clean and corrupted test images. "
                    "Flags of robust-models-transfer keep their meaning; defaults are the "
                    "recipe of Yamada & Otani (CVPR 2022).")
    orig = parser.add_argument_group("robust-models-transfer flags")
    orig.add_argument("--arch", default="resnet50", choices=ARCHS,
                      help="network; wide_resnet50_4 is ResNet-50 with 4x wide bottlenecks as in "
                           "the robustness library; resnet_tiny / swin_tiny_test are for tests")
    orig.add_argument("--dataset", default="cifar10", choices=("cifar10", "cifar100"),
                      help="target data set")
    orig.add_argument("--data", default="data",
                      help="folder holding cifar-10-batches-py/ (or cifar-100-python/), the "
                           "python version from www.cs.toronto.edu/~kriz/cifar.html; nothing "
                           "is downloaded")
    orig.add_argument("--out-dir", required=True, help="where experiment folders are written")
    orig.add_argument("--exp-name", required=True,
                      help="experiment folder under --out-dir (checkpoints, logs, results)")
    orig.add_argument("--epochs", type=int, default=150, help="training epochs")
    orig.add_argument("--lr", type=float, default=0.01, help="initial learning rate (SGD)")
    orig.add_argument("--step-lr", type=int, default=30,
                      help="multiply the learning rate by --step-lr-gamma every this many epochs")
    orig.add_argument("--step-lr-gamma", type=float, default=0.1, help="step learning-rate factor")
    orig.add_argument("--batch-size", type=int, default=64, help="training batch size")
    orig.add_argument("--weight-decay", type=float, default=5e-4,
                      help="SGD weight decay (on the trained parameters)")
    orig.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    orig.add_argument("--workers", type=int, default=4, help="data-loading worker processes")
    orig.add_argument("--model-path", default=None,
                      help="ImageNet checkpoint to start from: robustness-library .ckpt, "
                           "torchvision state dict, ANT, DeepAugment+AugMix, PRIME or Swin-T "
                           "release (layout detected; see --model-format); omitted = random init")
    orig.add_argument("--resume", action="store_true",
                      help="continue <out-dir>/<exp-name>/checkpoint.pt.latest from its next epoch "
                           "(and a results file from its next cell)")
    orig.add_argument("--freeze-level", type=int, default=-1, choices=(-1, 1, 2, 3, 4),
                      help="freeze the network up to and including layer<k> (ResNet: conv1, bn1, "
                           "layer1..k; Swin: patch embedding and stages 1..k); 4 = fixed-feature "
                           "transfer, -1 = full-network transfer")
    orig.add_argument("--subset", type=int, default=None,
                      help="train on a seeded random subset of this many training images")
    orig.add_argument("--additional-hidden", type=int, default=0,
                      help="number of Linear+ReLU layers put before the new classification layer")
    orig.add_argument("--adv-train", type=int, default=0, choices=(0, 1),
                      help="adversarial fine-tuning; only 0 is supported (the study fine-tunes "
                           "with standard training)")
    orig.add_argument("--adv-eval", type=int, default=0, choices=(0, 1),
                      help="adversarial evaluation; only 0 is supported")
    orig.add_argument("--eval-only", type=int, default=0, choices=(0, 1),
                      help="1: do not train, evaluate the fine-tuned checkpoint of this experiment "
                           "(see --eval-checkpoint)")
    orig.add_argument("--log-iters", type=int, default=5,
                      help="evaluate test accuracy every this many epochs (and after the last); "
                           "checkpoint.pt.best follows these evaluations")
    orig.add_argument("--save-ckpt-iters", type=int, default=-1,
                      help="also keep <epoch>_checkpoint.pt every this many epochs (-1: never)")
    orig.add_argument("--no-tqdm", type=int, default=0, choices=(0, 1),
                      help="1: no progress bars (the per-epoch summary lines remain)")
    orig.add_argument("--pytorch-pretrained", action="store_true",
                      help="not supported (needs a download): pass torchvision's resnet50 .pth "
                           "file with --model-path instead")
    for flag in ("--eps", "--constraint", "--attack-lr", "--attack-steps", "--random-restarts"):
        orig.add_argument(flag, default=None,
                          help="PGD setting of adversarial training; accepted for command "
                               "compatibility, unused (adversarial training is not supported)")

    ours = parser.add_argument_group("additions of this benchmark")
    ours.add_argument("--seed", type=int, default=0,
                      help="seeds the head initialisation, --subset, data order and augmentation "
                           "(per epoch, so --resume continues exactly)")
    ours.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    ours.add_argument("--model-format", default=None, choices=SUPPORTED_FORMATS,
                      help="layout of --model-path when detection guesses wrong (default: detect)")
    ours.add_argument("--unsafe-load", action="store_true",
                      help="load --model-path with weights_only=False (runs pickled code: only for "
                           "files you trust)")
    ours.add_argument("--backbone-name", default=None,
                      help="backbone label in results and reports (default: --model-path's file name)")
    ours.add_argument("--freeze-bn-stats", action=argparse.BooleanOptionalAction, default=False,
                      help="keep BatchNorm layers of the frozen part in eval mode during training. "
                           "Default off = robust-models-transfer's behaviour: frozen BatchNorm "
                           "layers keep their weights but update their running statistics")
    ours.add_argument("--normalization", default="dataset", choices=("dataset", "imagenet"),
                      help="mean/std of the normalisation inside the model: 'dataset' = CIFAR "
                           "statistics, what robust-models-transfer uses; 'imagenet' = ImageNet's")
    ours.add_argument("--input-size", type=int, default=224,
                      help="crop size of the transforms (train RandomResizedCrop, test Resize "
                           "size*256/224 + CenterCrop); 224 for real runs, 32-64 for tests")
    ours.add_argument("--eval-corruptions", default=None,
                      help="after training (or with --eval-only 1) evaluate these corruptions: a "
                           "group (benchmark, all, noise, blur, weather, digital, holdout), names, "
                           "or a comma-separated mix; the clean cell is always evaluated")
    ours.add_argument("--severities", type=_severities, nargs="+", default=None,
                      help="severities 1..5 to evaluate, e.g. '1 2 3' or '1,2,3' (default: all five)")
    ours.add_argument("--cifar10c-dir", "--cifar-c-dir", dest="cifar_c_dir", default=None,
                      help="CIFAR-10-C (CIFAR-100-C) folder of <corruption>.npy + labels.npy: "
                           "evaluate on the released files (CIFAR-sized corruption parameters). "
                           "Without it, corruptions are generated on the fly by our library "
                           "(ImageNet-C parameters)")
    ours.add_argument("--corruption-backend", default="numpy", choices=("numpy", "torch"),
                      help="backend of on-the-fly corruptions")
    ours.add_argument("--corruption-seed", type=int, default=None,
                      help="seed of on-the-fly corruptions (default: --seed)")
    ours.add_argument("--eval-checkpoint", default="latest",
                      help="checkpoint evaluated for robustness: latest (final epoch), best "
                           "(best test accuracy seen), or a file path")
    ours.add_argument("--eval-subset", type=int, default=None,
                      help="evaluate on the first N test images only (smoke runs)")
    ours.add_argument("--eval-batch-size", type=int, default=None,
                      help="evaluation batch size (default: --batch-size)")
    ours.add_argument("--results", default=None,
                      help="results JSON to write (default: <out-dir>/<exp-name>/robustness_"
                           "<source>.json); render it with `robust-transfer report`")
    prime = parser.add_argument_group(
        "PRIME augmentation during transfer",
        "PRIME (Modas, Rade et al. 2022) on the training batches, on the training device, before "
        "the normalisation inside the model; never on test images. Defaults: the settings of the "
        "study's PRIME-during-transfer experiments (colour + random filter, width 3, depth 1); "
        "each --prime-* flag overrides one (see docs/prime.md)")
    from robust_transfer.augment.params import add_prime_arguments

    add_prime_arguments(prime)
    prime.add_argument("--prime-seed", type=int, default=None,
                       help="seed of the PRIME draws (re-seeded per epoch; default: --seed)")
    return parser


def config_from_args(args: argparse.Namespace):
    """The library's TransferConfig for parsed arguments; refuses what is not supported."""
    if args.adv_train or args.adv_eval:
        raise NotImplementedError(
            "adversarial fine-tuning/evaluation (--adv-train 1 / --adv-eval 1) is not supported: "
            "the robustness-transfer study fine-tunes with standard training (--adv-train 0); "
            "robust ImageNet backbones are loaded with --model-path")
    if args.pytorch_pretrained:
        raise NotImplementedError(
            "--pytorch-pretrained needs a download, which is not possible here: pass the "
            "torchvision checkpoint file (e.g. resnet50-0676ba61.pth) with --model-path")
    from robust_transfer.augment.params import prime_params_from_args
    from robust_transfer.classification import TransferConfig

    return TransferConfig(
        arch=args.arch, dataset=args.dataset, data=args.data, out_dir=args.out_dir,
        exp_name=args.exp_name, epochs=args.epochs, lr=args.lr, step_lr=args.step_lr,
        step_lr_gamma=args.step_lr_gamma, batch_size=args.batch_size,
        weight_decay=args.weight_decay, momentum=args.momentum, workers=args.workers,
        model_path=args.model_path, model_format=args.model_format, unsafe_load=args.unsafe_load,
        backbone_name=args.backbone_name, resume=args.resume, freeze_level=args.freeze_level,
        freeze_bn_stats=args.freeze_bn_stats, subset=args.subset,
        additional_hidden=args.additional_hidden, normalization=args.normalization,
        input_size=args.input_size, seed=args.seed, device=args.device, log_iters=args.log_iters,
        save_ckpt_iters=args.save_ckpt_iters, progress=not args.no_tqdm,
        eval_only=bool(args.eval_only), eval_corruptions=args.eval_corruptions,
        severities=sorted({s for group in args.severities or [[1, 2, 3, 4, 5]] for s in group}),
        cifar_c_dir=args.cifar_c_dir, corruption_backend=args.corruption_backend,
        corruption_seed=args.corruption_seed, eval_checkpoint=args.eval_checkpoint,
        eval_subset=args.eval_subset, eval_batch_size=args.eval_batch_size, results=args.results,
        prime=args.prime, prime_params=prime_params_from_args(args), prime_seed=args.prime_seed)


def main(argv: list[str] | None = None) -> int:
    """Parse, run, and turn bad input into a one-line error (exit status 2)."""
    args = build_parser().parse_args(argv)
    try:
        from robust_transfer.classification import run_transfer

        outcome = run_transfer(config_from_args(args))
    except (ValueError, FileNotFoundError, NotImplementedError) as error:
        print(f"main.py: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished epochs and cells are saved; rerun with --resume", file=sys.stderr)
        return 130
    if outcome["results"]:
        print(f"results: {outcome['results']}  (render: robust-transfer report "
              f"{outcome['results']} --out <dir>)")
    print(f"experiment folder: {outcome['exp_dir']}")
    return 0


if __name__ == "__main__":
    try:
        import robust_transfer  # noqa: F401
    except ImportError:  # run from a checkout without the package installed
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    sys.exit(main())
