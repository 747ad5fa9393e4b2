"""The grid's pace flags: --batch-size, --workers, --amp of the robustness tools.

Fast: the flags reach the config and the results' extra, --amp is the test loop's autocast, and
batch-mode corrupted pixels do not depend on the batch size or on autocast. Slow: the tiny Mask
R-CNN's clean cell at batch 8 against batch 1 on a validation set of landscape and portrait
images (so the batch is padded), within the tolerance the --help states.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from robust_transfer.openmmlab.batching import (BATCH_TOLERANCE, add_pace_flags, apply_pace,
                                                pace_extra)
from robust_transfer.openmmlab.runner import enable_test_amp

REPO = Path(__file__).resolve().parents[1]


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_pace_flags(parser)
    return parser.parse_args(list(argv))


def _cfg(**test_cfg):
    from mmengine.config import ConfigDict

    return ConfigDict(test_dataloader=dict(batch_size=1, num_workers=2, persistent_workers=True),
                      test_cfg=dict(type="TestLoop", **test_cfg))


def test_flags_reach_the_config_and_the_results_extra(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # --amp needs CUDA
    cfg = _cfg()
    args = _parse("--batch-size", "8", "--workers", "0", "--amp")
    apply_pace(cfg, args)
    assert cfg.test_dataloader.batch_size == 8 and cfg.test_dataloader.num_workers == 0
    assert cfg.test_dataloader.persistent_workers is False  # torch refuses it without workers
    assert cfg.test_cfg == dict(type="TestLoop", fp16=True)
    assert pace_extra(cfg, args) == {"batch_size": 8, "workers": 0, "amp": True}
    untouched = _cfg()
    apply_pace(untouched, _parse())  # no flags: the config's own values, recorded as they are
    assert untouched.test_dataloader.batch_size == 1 and "fp16" not in untouched.test_cfg
    assert pace_extra(untouched, _parse()) == {"batch_size": 1, "workers": 2, "amp": False}


def test_amp_without_cuda_is_refused_before_anything_is_built(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="--amp needs a CUDA GPU"):
        apply_pace(_cfg(), _parse("--amp"))


@pytest.mark.parametrize("argv", [["--batch-size", "0"], ["--workers", "-1"], ["--batch-size", "x"]])
def test_bad_values_are_refused(argv, capsys):
    with pytest.raises(SystemExit):
        _parse(*argv)
    assert "error:" in capsys.readouterr().err


def test_test_amp_is_the_test_loops_autocast_and_refuses_unknown_loops():
    from mmengine.config import ConfigDict

    bare = ConfigDict(test_dataloader=dict(batch_size=1))  # no test_cfg: mmengine's TestLoop
    enable_test_amp(bare)
    assert bare.test_cfg == dict(type="TestLoop", fp16=True)
    with pytest.raises(ValueError, match="--amp works with test_cfg type TestLoop"):
        enable_test_amp(ConfigDict(test_cfg=dict(type="MyLoop")))


def test_robustness_parser_has_the_pace_flags_with_help():
    from robust_transfer.openmmlab.robustness import build_robustness_parser

    parser = build_robustness_parser("detection")
    args = parser.parse_args(["c.py", "k.pth", "--batch-size", "4", "--amp"])
    assert (args.batch_size, args.workers, args.amp) == (4, None, True)
    text = parser.format_help()
    assert "--batch-size" in text and "--workers" in text and "--amp" in text
    assert f"{BATCH_TOLERANCE:g}" in text and "pad" in text  # the tolerance and its reason


@pytest.mark.parametrize("corruption", ["gaussian_blur", "gaussian_noise"])
def test_batch_mode_pixels_do_not_depend_on_batch_size_or_autocast(corruption):
    from robust_transfer.openmmlab.corrupt_preprocessor import CorruptDataPreprocessor

    wrapper = CorruptDataPreprocessor(torch.nn.Identity(), corruption, 3, seed=5)
    g = torch.Generator().manual_seed(0)
    sizes = [(48, 64), (64, 48)] * 4  # two size groups, as a mixed detection batch
    images = [torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8) for h, w in sizes]
    keys = [f"{i:04d}.jpg" for i in range(len(images))]
    one_by_one = [wrapper.corrupt_inputs([image], [key])[0] for image, key in zip(images, keys)]
    batch_of_8 = wrapper.corrupt_inputs(images, keys)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):  # what --amp wraps around it
        under_amp = wrapper.corrupt_inputs(images, keys)
    for single, batched, amp in zip(one_by_one, batch_of_8, under_amp):
        assert torch.equal(single, batched) and torch.equal(single, amp)
    assert not torch.equal(batch_of_8[0], images[0])


# ----------------------------------------------------------------------------- slow: the tool


def _mixed_size_coco(root: Path):
    """Synthetic COCO whose validation set holds 4 landscape (96 x 128) and 4 portrait
    (128 x 96) images: a batch of 8 is padded to 128 x 128."""
    from robust_transfer.datasets.synthetic_coco import write_synthetic_coco

    data = write_synthetic_coco(root / "data", num_train=16, num_val=4, image_size=(96, 128))
    portrait = write_synthetic_coco(root / "portrait", num_train=0, num_val=4, image_size=(128, 96),
                                    seed=1)
    ann_path = data.root / "annotations" / "instances_val.json"
    doc = json.loads(ann_path.read_text())
    extra = json.loads((portrait.root / "annotations" / "instances_val.json").read_text())
    image_offset = 1 + max(image["id"] for image in doc["images"])
    ann_offset = 1 + max(ann["id"] for ann in doc["annotations"])
    for image in extra["images"]:
        shutil.copy(portrait.root / "val" / image["file_name"], data.root / "val" / f"p_{image['file_name']}")
        doc["images"].append(dict(image, id=image["id"] + image_offset, file_name=f"p_{image['file_name']}"))
    for ann in extra["annotations"]:
        doc["annotations"].append(dict(ann, id=ann["id"] + ann_offset, image_id=ann["image_id"] + image_offset))
    ann_path.write_text(json.dumps(doc))
    return data


@pytest.fixture(scope="module")
def tiny_detector(tmp_path_factory):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_mmdet_integration import TINY_CONFIG, TOOLS, _env, _run

    ws = tmp_path_factory.mktemp("grid_batching")
    data = _mixed_size_coco(ws)
    env = _env(data.root)
    _run([sys.executable, TOOLS / "train.py", TINY_CONFIG, "--work-dir", ws / "train",
          "--cfg-options", "val_cfg=None", "val_dataloader=None", "val_evaluator=None"], env, ws)
    checkpoint = ws / "train" / "iter_40.pth"

    def robustness(name: str, *flags: str) -> dict:
        out = ws / name / "robustness.pkl"
        _run([sys.executable, TOOLS / "test_robustness.py", TINY_CONFIG, checkpoint, "--out", out,
              "--corruptions", "None", "--work-dir", ws / name, *flags], env, ws)
        return json.loads(out.with_suffix(".json").read_text())

    return robustness


@pytest.mark.slow
def test_clean_cell_of_batch_8_equals_batch_1_within_the_stated_tolerance(tiny_detector):
    from robust_transfer.results import identity

    one = tiny_detector("batch1", "--batch-size", "1")
    eight = tiny_detector("batch8", "--batch-size", "8")
    assert (one["extra"]["batch_size"], eight["extra"]["batch_size"]) == (1, 8)
    assert one["extra"]["amp"] is False
    assert identity(one) == identity(eight)  # batch size is not part of what was evaluated
    clean1, clean8 = one["cells"]["clean"]["0"], eight["cells"]["clean"]["0"]
    assert clean1["bbox_mAP_50"] > 0.05, clean1  # a model that detects something: a real comparison
    differences = {m: abs(clean8[m] - clean1[m]) for m in clean1}
    print("batch 8 - batch 1, clean cell:", differences)
    assert max(differences.values()) <= BATCH_TOLERANCE, differences
