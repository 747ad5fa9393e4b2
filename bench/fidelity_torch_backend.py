"""Measure the torch backend's fidelity to the numpy reference: the numbers in docs/corruptions.md.

Per corruption, over severities 1-5 (the tests in tests/test_corruptions_torch.py assert the
thresholds; this prints the measured values):

* deterministic corruptions: the lowest PSNR against the reference over the test photographs
  (astronaut and chelsea 128x160, coffee 97x131, grey camera 96x128) and severities;
* random corruptions with the reference's draws (a RandomState replayed through the backend's
  samplers): the lowest PSNR over astronaut 128x160 and coffee 97x131;
* random corruptions in distribution (the backend's own Philox draws, ``--seeds`` keys, astronaut at
  64x80): the largest relative difference of mean and std of |corrupted - clean| and the
  largest per-channel mean difference (grey levels), over the severities.

    .venv/bin/python bench/fidelity_torch_backend.py [--seeds 20] [--json OUT.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from robust_transfer import corruptions as C  # noqa: E402
from robust_transfer.corruptions import _torch_samplers  # noqa: E402
from test_corruptions_torch import (  # noqa: E402
    DETERMINISTIC,
    REPLAYABLE,
    _abs_diff_stats,
    _Replay,
    psnr,
)

RANDOM = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur",
          "motion_blur", "snow", "frost", "fog", "elastic_transform", "spatter")
SAMPLERS = ("randn", "rand", "pixel_randn", "pixel_rand", "randint_array", "uniform_scalar",
            "randint")


def _photo(name: str, height: int, width: int) -> np.ndarray:
    import skimage.data

    return np.asarray(Image.fromarray(getattr(skimage.data, name)()).resize((width, height),
                                                                             Image.LANCZOS))


def deterministic_psnr(images) -> dict:
    return {name: min(psnr(C.corrupt(image, name, s, backend="torch"), C.corrupt(image, name, s))
                      for image in images for s in C.SEVERITIES)
            for name in DETERMINISTIC}


def replay_psnr(images) -> dict:
    originals = {name: getattr(_torch_samplers, name) for name in SAMPLERS}
    results = {}
    try:
        for name in REPLAYABLE:
            worst = float("inf")
            for image in images:
                for severity in C.SEVERITIES:
                    seed = 100 + severity
                    stand_in = _Replay(np.random.RandomState(seed))
                    for sampler in SAMPLERS:
                        setattr(_torch_samplers, sampler, getattr(stand_in, sampler))
                    ours = C.corrupt(image, name, severity, backend="torch")
                    for sampler in SAMPLERS:
                        setattr(_torch_samplers, sampler, originals[sampler])
                    theirs = C.corrupt_with_rng(image, name, severity,
                                                np.random.RandomState(seed))
                    worst = min(worst, psnr(ours, theirs))
            results[name] = worst
    finally:
        for sampler in SAMPLERS:
            setattr(_torch_samplers, sampler, originals[sampler])
    return results


def distribution(image: np.ndarray, seeds: int) -> dict:
    keys = list(range(seeds))
    batch = torch.from_numpy(image).permute(2, 0, 1)[None].repeat(seeds, 1, 1, 1)
    results = {}
    for name in RANDOM:
        mean_dev = std_dev = channel_dev = 0.0
        for severity in C.SEVERITIES:
            ours = C.corrupt_batch(batch, name, severity, keys=keys).permute(0, 2, 3, 1).numpy()
            theirs = np.stack([C.corrupt(image, name, severity, key=k) for k in keys])
            our_mean, our_std, our_channels = _abs_diff_stats(ours, image)
            ref_mean, ref_std, ref_channels = _abs_diff_stats(theirs, image)
            mean_dev = max(mean_dev, abs(our_mean / ref_mean - 1))
            std_dev = max(std_dev, abs(our_std / ref_std - 1))
            channel_dev = max(channel_dev, float(np.abs(our_channels - ref_channels).max()))
        results[name] = {"mean_rel": mean_dev, "std_rel": std_dev, "channel_levels": channel_dev}
        print(f"  {name}: mean {mean_dev:.1%}, std {std_dev:.1%}, channel {channel_dev:.2f}",
              flush=True)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="keys per severity (default 20)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON")
    args = parser.parse_args(argv)

    photos = [_photo("astronaut", 128, 160), _photo("chelsea", 128, 160),
              _photo("coffee", 97, 131), _photo("camera", 96, 128)]
    report = {"deterministic_min_psnr": deterministic_psnr(photos)}
    for name, value in report["deterministic_min_psnr"].items():
        print(f"deterministic {name}: min PSNR {value:.1f} dB", flush=True)
    report["replay_min_psnr"] = replay_psnr([photos[0], photos[2]])
    for name, value in report["replay_min_psnr"].items():
        print(f"same draws {name}: min PSNR {value:.1f} dB", flush=True)
    print(f"in distribution over {args.seeds} keys (astronaut 64x80), worst severity:")
    report["distribution"] = distribution(photos[0][::2, ::2].copy(), args.seeds)
    report["seeds"] = args.seeds
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
