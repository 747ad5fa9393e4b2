"""The own-backbone path of docs/own-backbone.md, end to end on a stand-in: a ResNet saved as a
checkpoint is registered once, converted for the three tasks (each file loaded by that
framework's model or key check), converted by the segmentation tool under its id, and measured
on (synthetic) ImageNet-C into the file the report's correlation reads."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from robust_transfer.backbones import catalogue
from robust_transfer.backbones.resnet_family import build_torchvision_resnet, resnet_spec
from robust_transfer.cli import main
from robust_transfer.datasets.synthetic_imagenet import write_synthetic_imagenet_val
from robust_transfer.report import load_imagenet_robustness

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fresh_catalogue(monkeypatch):
    """Backbones registered by a test are forgotten after it."""
    monkeypatch.setattr(catalogue, "_CATALOGUE", dict(catalogue._CATALOGUE))


@pytest.fixture(params=["resnet18", "resnet18d"])
def standin(request, tmp_path):
    """A torchvision resnet18 (or a timm-layout resnet18d) ImageNet checkpoint, head included."""
    torch.manual_seed(0)
    path = tmp_path / "downloads" / f"my_{request.param}.pth"
    path.parent.mkdir()
    torch.save(build_torchvision_resnet(resnet_spec(request.param)).state_dict(), path)
    return request.param, path


def test_register_convert_and_load_in_each_framework(tmp_path, standin):
    arch, checkpoint = standin
    backbones = tmp_path / "backbones.yaml"
    assert main(["backbone", "add", "mine", str(checkpoint), "--backbones", str(backbones),
                 "--label", "My ResNet"]) == 0
    entry = yaml.safe_load(backbones.read_text())["backbones"]["mine"]
    assert entry["arch"] == arch and entry["format"] == "torchvision" and len(entry["sha256"]) == 64

    assert main(["backbone", "convert", "mine", "--backbones", str(backbones), "--root", str(tmp_path)]) == 0
    registered = catalogue.get_backbone("mine")
    _check_mmdet_file(tmp_path / registered.mmdet_path, arch)
    _check_mmseg_file(tmp_path / registered.mmseg_path, arch)
    _check_classification_file(tmp_path / "checkpoints/imagenet" / f"{arch}_mine_torchvision.pth", arch)


def _check_mmdet_file(path, arch):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    saved = torch.load(path, weights_only=True)
    register_all_modules(init_default_scope=False)
    expected_type = "ResNetV1d" if arch.endswith("d") else "ResNet"
    assert saved["meta"]["backbone_cfg"] == {"type": expected_type, "depth": 18}
    MODELS.build(saved["meta"]["backbone_cfg"]).load_state_dict(saved["state_dict"], strict=True)


def _check_mmseg_file(path, arch):
    from robust_transfer.backbones.mmseg import check_backbone_checkpoint

    backbone = dict(type="ResNetV1d" if arch.endswith("d") else "ResNet", depth=18,
                    init_cfg=dict(type="Pretrained", checkpoint=str(path)))
    assert check_backbone_checkpoint({"model": {"backbone": backbone}})["checked"]


def _check_classification_file(path, arch):
    from robust_transfer.classification.models import build_transfer_model, create_model

    create_model(arch).load_state_dict(torch.load(path, weights_only=True), strict=True)
    model, fmt = build_transfer_model(arch, 10, model_path=str(path))
    assert fmt == "torchvision" and model.model.fc.out_features == 10


def test_segmentation_tool_takes_a_registered_id(tmp_path, standin):
    arch, checkpoint = standin
    backbones = tmp_path / "backbones.yaml"
    backbones.write_text(yaml.safe_dump({"backbones": {"mine": {
        "arch": arch, "checkpoint": f"downloads/{checkpoint.name}", "format": "torchvision"}}}))
    tool = REPO / "mmsegmentation/tools/model_converters/imagenet2mmseg.py"
    run = lambda *args: subprocess.run([sys.executable, str(tool), *map(str, args)],  # noqa: E731
                                       capture_output=True, text=True, cwd=REPO)
    proc = run(checkpoint, tmp_path / "mine_mmseg.pth", "--backbones", backbones, "--backbone", "mine")
    assert proc.returncode == 0, proc.stderr
    assert set(torch.load(tmp_path / "mine_mmseg.pth", weights_only=True)["state_dict"]) >= {"layer4.1.bn2.weight"}
    unknown = run(checkpoint, tmp_path / "x.pth", "--backbone", "mine")  # not registered without the file
    assert unknown.returncode == 2 and len(unknown.stderr.strip().splitlines()) == 1
    assert "unknown backbone 'mine'" in unknown.stderr


def test_a_changed_checkpoint_is_refused_by_its_registration(tmp_path, standin):
    _, checkpoint = standin
    backbones = tmp_path / "backbones.yaml"
    assert main(["backbone", "add", "mine", str(checkpoint), "--backbones", str(backbones)]) == 0
    torch.save({"conv1.weight": torch.zeros(1)}, checkpoint)  # replaced under the same name
    assert main(["backbone", "convert", "mine", "--backbones", str(backbones), "--root", str(tmp_path)]) == 2
    assert not (tmp_path / "mmdetection").exists()


def test_measured_imagenet_c_feeds_the_correlation(tmp_path, standin):
    arch, checkpoint = standin
    backbones = tmp_path / "backbones.yaml"
    assert main(["backbone", "add", "mine", str(checkpoint), "--backbones", str(backbones)]) == 0
    val = write_synthetic_imagenet_val(tmp_path / "val", num_classes=2, per_class=1)
    assert main(["imagenet-c", str(checkpoint), "--data", str(val), "--backbone", "mine",
                 "--backbones", str(backbones), "--severities", "3", "--workers", "0",
                 "--device", "cpu", "--no-progress", "--out", str(tmp_path / "inc" / "mine.json")]) == 0
    values, metric = load_imagenet_robustness(tmp_path / "inc" / "imagenet_robustness.yaml")
    assert list(values) == ["mine"] and values["mine"] > 0 and "mCE" in metric
