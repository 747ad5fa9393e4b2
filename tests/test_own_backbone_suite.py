"""A suite with a backbone of the user's own (docs/own-backbone.md, step 4): registered in a
backbones file, converted by `robust-transfer backbone convert`, its ResNet put into the task
configs (backbone type and depth, neck/head channels of a ResNet-18), its converted file given to
main.py, and its ImageNet number taken from imagenet_robustness_file. A stand-in ResNet-18 with
random weights plays the user's checkpoint; the suite is the demo's scale."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from robust_transfer.study import Options, SuiteError, build_plan, load_suite
from robust_transfer.study.imagenet_numbers import merged_numbers
from robust_transfer.study.planners import PLANNERS
from robust_transfer.study.suite import Backbone

REPO = Path(__file__).resolve().parents[1]
OWN = "own_r18_standin"


@pytest.fixture(scope="module")
def registered(tmp_path_factory) -> Path:
    """A backbones file registering a stand-in torchvision ResNet-18 (one per test session, as
    the catalogue keeps an id's facts for the process)."""
    import torch
    import torchvision

    root = tmp_path_factory.mktemp("own")
    torch.save(torchvision.models.resnet18(num_classes=1000).state_dict(), root / "mine.pth")
    (root / "backbones.yaml").write_text(yaml.safe_dump({"backbones": {OWN: {
        "arch": "resnet18", "checkpoint": "mine.pth", "format": "torchvision", "label": "Mine"}}}))
    return root / "backbones.yaml"


def write_suite(tmp_path: Path, backbones_file: Path, evaluation: dict | None = None) -> Path:
    """The demo suite with the user's backbone beside a stand-in."""
    suite = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    suite["work_dir"] = str(tmp_path / "work")
    suite["backbones_file"] = str(backbones_file)
    suite["imagenet_robustness_file"] = "measured.yaml"  # relative to the suite file
    suite["backbones"] = {"plain": suite["backbones"]["plain"], OWN: {"registered": True}}
    if evaluation:
        suite["evaluation"].update(evaluation)
    path = tmp_path / "own.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def _step(plan, prefix):
    return next(s for s in plan.steps if s.id.startswith(prefix))


def _cfg(argv):
    return argv[argv.index("--cfg-options") + 1:]


def test_the_plan_converts_configures_and_correlates_the_registered_backbone(tmp_path, registered):
    plan = build_plan(load_suite(write_suite(tmp_path, registered)), Options())
    work = tmp_path / "work"
    ids = [s.id for s in plan.steps]
    assert f"prepare:standin/{OWN}" not in ids and "prepare:standin/plain" in ids
    convert = _step(plan, f"convert:detection/{OWN}")
    assert convert.argv[1:] == ["-m", "robust_transfer.cli", "backbone", "convert", OWN,
                                "--backbones", str(registered), "--root", str(work / "converted"),
                                "--to", "mmdet", "mmseg", "classification"]
    converted = work / "converted" / "mmdetection" / "checkpoints" / f"resnet18_{OWN}_mmdet.pth"
    for mode in ("fixed-feature", "full-network"):
        train = _cfg(_step(plan, f"train:detection/{OWN}/{mode}").argv)
        assert train[:3] == ["model.backbone.type=ResNet", "model.backbone.depth=18",
                             "model.neck.in_channels=[64,128,256,512]"]
        assert f"model.backbone.init_cfg.checkpoint={converted}" in train
        evaluation = _cfg(_step(plan, f"evaluate:detection/{OWN}/{mode}").argv)
        assert "model.backbone.depth=18" in evaluation  # the trained model is built the same way
        segmentation = _cfg(_step(plan, f"train:segmentation/{OWN}/{mode}").argv)
        assert {"model.decode_head.in_channels=[64,128,256,512]",
                "model.auxiliary_head.in_channels=256"} <= set(segmentation)
        main = _step(plan, f"train:classification/{OWN}/{mode}")
        argv = main.argv
        assert argv[argv.index("--arch") + 1] == "resnet18"
        assert argv[argv.index("--model-path") + 1] == \
            str(work / "converted" / "checkpoints" / "imagenet" / f"resnet18_{OWN}_torchvision.pth")
        assert argv[argv.index("--model-format") + 1] == "torchvision" and convert.id in main.deps
    plain = _cfg(_step(plan, "train:detection/plain/full-network").argv)
    assert not any(o.startswith("model.backbone.type") for o in plain)  # the config fits the stand-in
    numbers = _step(plan, "report:demo/imagenet-numbers")
    assert numbers.argv[-1] == str(tmp_path / "measured.yaml")
    report = plan.steps[-1]
    assert report.argv[report.argv.index("--imagenet-robustness") + 1] == numbers.argv[3]
    assert numbers.id in report.deps


def test_dry_run_prints_the_commands(tmp_path, registered):
    result = subprocess.run([sys.executable, "-m", "robust_transfer.cli", "reproduce",
                             str(write_suite(tmp_path, registered)), "--dry-run"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"backbone convert {OWN} --backbones" in result.stdout
    assert "model.backbone.depth=18 'model.neck.in_channels=[64,128,256,512]'" in result.stdout


def test_resnet50_channels_and_bad_suites(tmp_path, registered):
    own = Backbone(name="x", arch="resnet50d", format="torchvision", registered=True)
    assert PLANNERS["segmentation"].backbone_cfg_options(own) == [
        "model.backbone.type=ResNetV1d", "model.backbone.depth=50",
        "model.decode_head.in_channels=[256,512,1024,2048]", "model.auxiliary_head.in_channels=1024"]
    wide = Backbone(name="w", arch="wide_resnet50_2", format="torchvision", registered=True)
    with pytest.raises(SuiteError, match="no wide ResNet"):
        PLANNERS["detection"].backbone_cfg_options(wide)
    suite = yaml.safe_load(write_suite(tmp_path, registered).read_text())
    suite["backbones"]["nobody"] = {"registered": True}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(suite))
    with pytest.raises(SuiteError, match=f"nobody are not in .*it has: {OWN}"):
        load_suite(tmp_path / "bad.yaml")
    del suite["backbones_file"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(suite))
    with pytest.raises(SuiteError, match="names no backbones_file"):
        load_suite(tmp_path / "bad.yaml")


def test_measured_numbers_fill_only_the_gaps_and_never_mix_metrics(tmp_path):
    base, fill = tmp_path / "base.json", tmp_path / "fill.yaml"
    base.write_text(json.dumps({"metric": "mCE", "values": {"regular": 76.7}}))
    fill.write_text(yaml.safe_dump({"metric": "mCE", "values": {"regular": 70.0, OWN: 60.0}}))
    assert merged_numbers(base, fill) == {"metric": "mCE", "values": {"regular": 76.7, OWN: 60.0}}
    assert merged_numbers(base, tmp_path / "absent.yaml")["values"] == {"regular": 76.7}
    fill.write_text(yaml.safe_dump({"metric": "rPC", "values": {OWN: 60.0}}))
    with pytest.raises(ValueError, match="measure every backbone the same way"):
        merged_numbers(base, fill)


@pytest.mark.slow
def test_classification_of_the_registered_backbone_end_to_end(tmp_path, registered):
    """Convert, fine-tune (main.py) and evaluate the user's ResNet-18 on synthetic CIFAR-10."""
    suite = write_suite(tmp_path, registered, {"corruptions": ["gaussian_noise", "fog"], "severities": [1]})
    result = subprocess.run(
        [sys.executable, "-m", "robust_transfer.cli", "reproduce", str(suite), "--tasks",
         "classification", "--backbones", OWN, "--modes", "fixed-feature", "--data-scale", "ci",
         "--steps", "prepare", "convert", "train", "evaluate", "--jobs", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=1500, env={**__import__("os").environ,
                                                                     "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "work" / "results" / "classification" /
                          f"{OWN}__fixed-feature.json").read_text())
    assert results["backbone"] == OWN and results["extra"]["arch"] == "resnet18"
    assert results["grid"] == {"corruptions": ["gaussian_noise", "fog"], "severities": [0, 1]}
    status = subprocess.run([sys.executable, "-m", "robust_transfer.cli", "status", str(suite),
                             "--tasks", "classification", "--backbones", OWN, "--modes",
                             "fixed-feature", "--data-scale", "ci"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert f"done     evaluate:classification/{OWN}/fixed-feature" in status.stdout, status.stdout
