"""robust_transfer.backbones: the catalogue is the one source of the study's backbone facts (the
suites and task configs must agree with it), unknown ids fail with one line, backbones and
checkpoint formats can be added, and converted files are written atomically."""
import re
from pathlib import Path

import pytest
import torch
import yaml

from robust_transfer.backbones import (SUPPORTED_FORMATS, catalogue, formats, get_backbone,
                                       list_backbones, register_backbone)
from robust_transfer.backbones.files import save_atomically
from robust_transfer.backbones.formats import (READERS, detect_checkpoint_format,
                                               extract_state_dict, register_format)
from robust_transfer.study.suite import SuiteError, load_suite

REPO = Path(__file__).resolve().parents[1]
SUITES = sorted((REPO / "configs").glob("*.yaml"))
STUDY = ["regular", "ant", "deepaug_augmix", "prime", "l2_eps0.1", "l2_eps1", "l2_eps3", "l2_eps5",
         "swin_t"]


@pytest.fixture
def fresh_registries(monkeypatch):
    """Registrations made by a test are undone after it."""
    monkeypatch.setattr(catalogue, "_CATALOGUE", dict(catalogue._CATALOGUE))
    monkeypatch.setattr(formats, "READERS", dict(formats.READERS))
    monkeypatch.setattr(formats, "SUPPORTED_FORMATS", dict(formats.SUPPORTED_FORMATS))


# ----------------------------------------------------------------------------- the catalogue


def _suite_backbones():
    """(suite file, id, loaded backbone) of every published backbone, after the suite loader
    filled in what the YAML leaves to the catalogue."""
    for path in SUITES:
        for backbone_id, backbone in load_suite(path).backbones.items():
            if backbone.standin is None:  # the demo's stand-ins are built, not published
                yield path.name, backbone_id, backbone


def test_the_study_backbones_are_catalogued():
    assert list_backbones() == STUDY
    for backbone_id in STUDY:
        entry = get_backbone(backbone_id)
        assert entry.format in SUPPORTED_FORMATS and entry.checkpoint and entry.url
        assert entry.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", entry.sha256)
        assert (REPO / entry.mmdet_converter).is_file()
    for fmt in SUPPORTED_FORMATS:  # each layout has a converter that reads it
        assert (REPO / catalogue.mmdet_converter(fmt)).is_file()
    files = [get_backbone(b).mmdet_file for b in STUDY] + [get_backbone(b).mmseg_file for b in STUDY]
    assert len(set(files)) == len(files)


def _assert_agrees_with_catalogue(backbone, entry, tasks):
    for field in ("arch", "format", "checkpoint", "url", "label", "source"):
        assert getattr(backbone, field) == getattr(entry, field), field
    if "detection" in tasks:
        assert backbone.convert["detection"] == {"tool": entry.mmdet_converter,
                                                 "output": entry.mmdet_path}
    if "segmentation" in tasks:
        assert backbone.convert["segmentation"] == {
            "tool": catalogue.MMSEG_CONVERTER, "args": ["--backbone", entry.id],
            "output": entry.mmseg_path}


@pytest.mark.parametrize("suite,backbone_id,backbone", list(_suite_backbones()),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_every_suite_backbone_agrees_with_the_catalogue(suite, backbone_id, backbone):
    tasks = load_suite(REPO / "configs" / suite).tasks
    _assert_agrees_with_catalogue(backbone, get_backbone(backbone_id), tasks)


def _suite_with_backbones(tmp_path, backbones: dict) -> Path:
    raw = yaml.safe_load((REPO / "configs" / "fixed_feature.yaml").read_text())
    raw["backbones"] = backbones
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_an_entry_giving_only_configs_gets_the_catalogue_facts(tmp_path):
    configs = yaml.safe_load((REPO / "configs" / "fixed_feature.yaml").read_text())[
        "backbones"]["ant"]["configs"]
    suite = load_suite(_suite_with_backbones(tmp_path, {
        "ant": {"configs": configs},
        "ant_again": {"catalogue": "ant", "configs": configs, "label": "ANT, own label"}}))
    _assert_agrees_with_catalogue(suite.backbones["ant"], get_backbone("ant"), suite.tasks)
    again = suite.backbones["ant_again"]  # another key naming its catalogue id; label overridden
    assert again.label == "ANT, own label" and again.checkpoint == "ANT_Model.pth"
    assert again.convert["segmentation"]["args"] == ["--backbone", "ant"]


@pytest.mark.parametrize("entry", [{}, {"catalogue": "nobody"}])
def test_an_unknown_catalogue_id_is_a_one_line_suite_error(tmp_path, entry):
    path = _suite_with_backbones(tmp_path, {"nobody": {"configs": {}, **entry}})
    with pytest.raises(SuiteError, match=r"backbone 'nobody': unknown backbone 'nobody'; known: regular") as error:
        load_suite(path)
    assert "\n" not in str(error.value)


def test_every_catalogued_backbone_is_in_a_suite():
    assert {backbone_id for _, backbone_id, _ in _suite_backbones()} == set(STUDY)


@pytest.mark.parametrize("framework", ["mmdetection", "mmsegmentation"])
def test_task_configs_load_the_catalogued_backbone_files(framework):
    attribute = "mmdet_file" if framework == "mmdetection" else "mmseg_file"
    checked = 0
    for config in (REPO / framework / "configs").rglob("*.py"):
        text = config.read_text()
        loaded = re.search(r"^backbone_checkpoint = '([^']+)'", text, flags=re.M)
        named = re.search(r"^transfer = dict\(backbone='([^']+)'", text, flags=re.M)
        if not (loaded and named):
            continue  # inherits both from its base config
        entry = get_backbone(named.group(1))
        if loaded.group(1) == "torchvision://resnet50":  # mmengine's name for the same weights
            assert entry.format == "torchvision", config.name
        else:
            assert loaded.group(1).endswith(f"/checkpoints/{getattr(entry, attribute)}"), config.name
        checked += 1
    assert checked >= len(STUDY)  # every study backbone has a config of its own


def test_unknown_backbone_id_is_one_line_listing_the_known_ids():
    with pytest.raises(ValueError) as info:
        get_backbone("resnet50_l2_eps3")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("unknown backbone 'resnet50_l2_eps3'; known: regular, ant,")
    assert all(backbone_id in message for backbone_id in STUDY)


def test_register_a_backbone(fresh_registries):
    entry = register_backbone("my_augmix", "resnet50", "augmix.pth.tar", "deepaugment",
                              url="https://example.org/augmix.pth.tar")
    assert get_backbone("my_augmix") is entry and list_backbones()[-1] == "my_augmix"
    assert entry.mmdet_path == "mmdetection/checkpoints/resnet50_my_augmix_mmdet.pth"
    assert entry.mmseg_file == "resnet50_my_augmix_mmseg.pth" and entry.label == "my_augmix"
    assert entry.mmdet_converter.endswith("deepaug2mmdet.py") and entry.sha256 is None
    with pytest.raises(ValueError, match="'my_augmix' is already in the catalogue"):
        register_backbone("my_augmix", "resnet50", "other.pth", "torchvision")
    with pytest.raises(ValueError, match="unknown backbone arch 'vgg16'; allowed: resnet18"):
        register_backbone("vgg", "vgg16", "vgg.pth", "torchvision")
    with pytest.raises(ValueError, match="unknown checkpoint format 'caffe'; allowed: robustness"):
        register_backbone("caffe_r50", "resnet50", "r50.caffemodel", "caffe")
    with pytest.raises(ValueError, match="sha256 must be 64"):
        register_backbone("short_hash", "resnet50", "r50.pth", "torchvision", sha256="0676ba61")
    assert "vgg" not in list_backbones() and "short_hash" not in list_backbones()


def test_registered_backbone_is_gone_after_the_test():
    assert list_backbones() == STUDY  # the fixture above restored the catalogue


# ----------------------------------------------------------------------------- format readers


def _example_of(fmt):
    """A tiny loaded checkpoint in each registered layout (real container and key prefixes)."""
    sd = {"conv1.weight": torch.ones(2, 3, 1, 1), "fc.weight": torch.ones(4, 2)}
    prefixed = lambda prefix: {prefix + k: v for k, v in sd.items()}  # noqa: E731
    return {"robustness": {"model": prefixed("module.model.") | prefixed("module.attacker.model.")},
            "swin": {"model": {"patch_embed.proj.weight": torch.ones(1), "head.weight": torch.ones(1)}},
            "ant": {"model_state_dict": prefixed("module."), "epoch": 1},
            "deepaugment": {"state_dict": prefixed("module."), "epoch": 1},
            "prime": {"state_dict": dict(sd)},
            "torchvision": dict(sd)}[fmt]


def test_supported_formats_are_the_registered_readers():
    assert list(SUPPORTED_FORMATS) == list(READERS)
    assert set(READERS) == {"robustness", "swin", "ant", "deepaugment", "prime", "torchvision"}
    assert list(READERS)[-1] == "torchvision"  # the catch-all is asked last
    assert all(SUPPORTED_FORMATS[name] == reader.description for name, reader in READERS.items())


@pytest.mark.parametrize("fmt", list(READERS))
def test_each_reader_detects_and_unwraps_its_layout(fmt):
    obj = _example_of(fmt)
    assert detect_checkpoint_format(obj) == fmt
    state_dict, detected = extract_state_dict(obj)
    assert detected == fmt
    assert not any(k.startswith(("module.", "model.")) for k in state_dict)
    if fmt != "swin":
        assert set(state_dict) == {"conv1.weight", "fc.weight"}


def test_register_a_format(fresh_registries):
    @register_format("keras_export", "a test layout ({'weights': ...}, net.* keys)",
                     matches=lambda container, keys: all(k.startswith("net.") for k in keys))
    def _unwrap(state_dict):
        return {k[len("net."):]: v for k, v in state_dict.items()}

    assert "keras_export" in formats.SUPPORTED_FORMATS
    # registered after the catch-all, so only asked for by name
    obj = {"net.conv1.weight": torch.ones(1)}
    assert detect_checkpoint_format(obj) == "torchvision"
    assert extract_state_dict(obj, "keras_export")[0].keys() == {"conv1.weight"}
    with pytest.raises(ValueError, match="'keras_export' is already registered"):
        register_format("keras_export", "again", matches=lambda container, keys: False)(_unwrap)


# ----------------------------------------------------------------------------- atomic save


def test_save_atomically_replaces_whole_files_only(tmp_path):
    dst = tmp_path / "deep" / "backbone.pth"
    save_atomically({"state_dict": {"w": torch.ones(2)}}, dst)
    assert torch.equal(torch.load(dst, weights_only=True)["state_dict"]["w"], torch.ones(2))
    with pytest.raises(Exception):  # a lambda cannot be pickled: the write fails midway
        save_atomically({"state_dict": {"w": torch.zeros(2)}, "bad": lambda: None}, dst)
    assert torch.equal(torch.load(dst, weights_only=True)["state_dict"]["w"], torch.ones(2))
    assert [p.name for p in dst.parent.iterdir()] == ["backbone.pth"]


# ----------------------------------------------------------------------------- user backbones file


def test_user_backbones_file_registers_each_entry_once(fresh_registries, tmp_path):
    from robust_transfer.backbones.catalogue import load_user_backbones

    path = tmp_path / "conf" / "backbones.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({"backbones": {
        "my_r101": {"arch": "resnet101", "checkpoint": "../weights/r101.pth", "format": "torchvision"},
        "my_r50d": {"arch": "resnet50d", "checkpoint": "/abs/r50d.pth", "format": "prime",
                    "label": "ResNet-50-D (timm)"}}}))
    first = load_user_backbones(path)
    assert [b.id for b in first] == ["my_r101", "my_r50d"] and list_backbones()[-2:] == ["my_r101", "my_r50d"]
    assert get_backbone("my_r101").checkpoint == str((tmp_path / "weights" / "r101.pth").resolve())
    assert get_backbone("my_r50d").label == "ResNet-50-D (timm)"
    assert get_backbone("my_r50d").mmseg_file == "resnet50d_my_r50d_mmseg.pth"
    assert load_user_backbones(path) == first  # loading again is harmless


@pytest.mark.parametrize("entries,message", [
    ({"regular": {"arch": "resnet50", "checkpoint": "r.pth", "format": "torchvision"}}, "already in the catalogue"),
    ({"x": {"arch": "resnet50", "checkpoint": "r.pth"}}, "backbone 'x': no 'format'"),
    ({"x": {"arch": "resnet50", "checkpoint": "r.pth", "format": "torchvision", "depth": 50}}, "unknown field 'depth'"),
    ({"x": {"arch": "vgg16", "checkpoint": "r.pth", "format": "torchvision"}}, "unknown backbone arch 'vgg16'"),
    ({"x": "resnet50"}, "must be a mapping"),
    ([1, 2], "expected a mapping 'backbones:"),
])
def test_bad_user_backbones_file_is_one_line(fresh_registries, tmp_path, entries, message):
    from robust_transfer.backbones.catalogue import load_user_backbones

    path = tmp_path / "backbones.yaml"
    path.write_text(yaml.safe_dump({"backbones": entries} if isinstance(entries, dict) else entries))
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        load_user_backbones(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert list_backbones() == STUDY


def test_a_user_id_is_not_registered_twice_with_other_facts(fresh_registries, tmp_path):
    from robust_transfer.backbones.catalogue import load_user_backbones

    path = tmp_path / "backbones.yaml"
    path.write_text(yaml.safe_dump({"backbones": {"x": {"arch": "resnet50", "checkpoint": "/a.pth",
                                                        "format": "torchvision"}}}))
    load_user_backbones(path)
    path.write_text(path.read_text().replace("/a.pth", "/b.pth"))
    with pytest.raises(ValueError, match="with other facts"):
        load_user_backbones(path)
