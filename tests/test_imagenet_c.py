"""``robust-transfer imagenet-c``: ImageNet-C top-1 of a backbone on an ImageNet-val-layout folder,
through the shared grid (resume, shards) into the shared results schema, and the number the
report's correlation reads."""
import json
import subprocess
import sys

import pytest
import torch
import torchvision

from robust_transfer.cli import main
from robust_transfer.datasets.synthetic_imagenet import IMAGENET_FIRST_WNIDS, write_synthetic_imagenet_val
from robust_transfer.imagenet_c import ImageNetValCrops, scan_imagenet_val
from robust_transfer.metrics import ALEXNET_ERRORS
from robust_transfer.report import load_imagenet_robustness
from robust_transfer.results import load_results, merge_results


@pytest.fixture(scope="module")
def val_dir(tmp_path_factory):
    """3 classes x 4 JPEGs of several sizes, in the ImageNet validation layout."""
    return write_synthetic_imagenet_val(tmp_path_factory.mktemp("imagenet") / "val")


def always_predicts(label, path):
    """A ResNet-18 checkpoint whose classifier answers ``label`` for every image."""
    model = torchvision.models.resnet18()
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.zero_()
        model.fc.bias[label] = 1.0
    torch.save(model.state_dict(), path)
    return path


def run(*args):
    return main(["imagenet-c", *map(str, args), "--workers", "0", "--device", "cpu", "--no-progress"])


def test_synthetic_val_folder_has_the_imagenet_layout(val_dir):
    paths, labels = scan_imagenet_val(val_dir)
    assert sorted(p.name for p in val_dir.iterdir()) == list(IMAGENET_FIRST_WNIDS[:3])
    assert len(paths) == 12 and labels == [0] * 4 + [1] * 4 + [2] * 4
    assert all(p.endswith(".JPEG") and p.split("/")[0] == IMAGENET_FIRST_WNIDS[l] for p, l in zip(paths, labels))
    crop, label, key = ImageNetValCrops(val_dir, paths, labels)[5]
    assert crop.shape == (3, 224, 224) and crop.dtype == torch.uint8 and (label, key) == (1, paths[5])


def test_limit_keeps_every_class(val_dir):
    paths, labels = scan_imagenet_val(val_dir, limit=3)
    assert labels == [0, 1, 2] and len(set(paths)) == 3


def test_top1_counts_the_folder_labels(val_dir, tmp_path):
    checkpoint = always_predicts(1, tmp_path / "ones.pth")
    out = tmp_path / "r.json"
    assert run(checkpoint, "--data", val_dir, "--corruptions", "fog", "--severities", "2", "--out", out) == 0
    results = load_results(out)
    assert results["task"] == "imagenet-c" and results["model"] == "ones"
    assert results["dataset"] == "imagenet-val" and results["extra"]["arch"] == "resnet18"
    # 4 of the 12 images are of class 1, clean and fogged alike
    assert results["cells"] == {"clean": {"0": {"top1": pytest.approx(100 / 3)}},
                                "fog": {"2": {"top1": pytest.approx(100 / 3)}}}


def test_resume_and_shards_give_the_same_cells(val_dir, tmp_path):
    torch.manual_seed(0)
    checkpoint = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), checkpoint)
    grid = ["--corruptions", "gaussian_noise", "contrast", "--severities", "1", "5", "--limit", "6"]
    whole = tmp_path / "whole.json"
    assert run(checkpoint, "--data", val_dir, *grid, "--out", whole, "--batch-size", "4") == 0
    assert run(checkpoint, "--data", val_dir, *grid, "--out", whole) == 2  # finished cells: no clobbering
    before = whole.read_text()
    assert run(checkpoint, "--data", val_dir, *grid, "--out", whole, "--resume") == 0
    assert json.loads(whole.read_text())["cells"] == json.loads(before)["cells"]
    for index in (0, 1):  # other batch size, two shards: keys are image paths, so same numbers
        assert run(checkpoint, "--data", val_dir, *grid, "--out", tmp_path / "s.json",
                   "--shard", f"{index}/2", "--batch-size", "3") == 0
    merged = merge_results(load_results(tmp_path / f"s.shard{i}-of-2.json") for i in (0, 1))
    assert merged["cells"] == load_results(whole)["cells"]


def test_the_correlation_reads_the_measured_mce(val_dir, tmp_path):
    checkpoint = always_predicts(0, tmp_path / "zeros.pth")
    out = tmp_path / "out" / "zeros.json"
    assert run(checkpoint, "--data", val_dir, "--severities", "1", "--limit", "3", "--out", out) == 0
    values, metric = load_imagenet_robustness(tmp_path / "out" / "imagenet_robustness.yaml")
    # top-1 is 1/3 everywhere: CE_c = (1 - 1/3) / AlexNet's error on c
    expected = 100 * sum((2 / 3) / e for e in ALEXNET_ERRORS.values()) / len(ALEXNET_ERRORS)
    assert values == {"zeros": pytest.approx(expected, abs=1e-3)} and metric.startswith("ImageNet-C mCE")


@pytest.mark.parametrize("case", ["no data", "not a checkpoint", "unwritable out", "bad device"])
def test_bad_input_is_one_line_before_any_work(val_dir, tmp_path, case):
    checkpoint = always_predicts(0, tmp_path / "ok.pth")
    (tmp_path / "file").write_text("x")
    (tmp_path / "junk.pth").write_text("junk")
    args = {"no data": [checkpoint, "--data", tmp_path / "missing"],
            "not a checkpoint": [tmp_path / "junk.pth", "--data", val_dir],
            "unwritable out": [checkpoint, "--data", val_dir, "--out", tmp_path / "file" / "r.json"],
            "bad device": [checkpoint, "--data", val_dir, "--device", "tpu"]}[case]
    proc = subprocess.run([sys.executable, "-m", "robust_transfer.cli", "imagenet-c", *map(str, args),
                           "--out" if case != "unwritable out" else "--seed",
                           str(tmp_path / "r.json") if case != "unwritable out" else "0"],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "r.json").exists()
