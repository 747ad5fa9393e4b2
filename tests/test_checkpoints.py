"""Each published ImageNet checkpoint layout, rebuilt from synthetic weights with the real key
names, converts to torchvision keys (and to the mmdet/mmseg ResNet file)."""
import argparse

import pytest
import torch
import torchvision

from robust_transfer.backbones.checks import CheckpointError
from robust_transfer.backbones.classification import (expected_keys, load_imagenet_backbone,
                                                      to_torchvision_state_dict)
from robust_transfer.backbones.formats import detect_checkpoint_format, extract_state_dict
from robust_transfer.backbones.mmdet import export_mmdet_resnet, mmdet_resnet_state_dict
from robust_transfer.backbones.swin_keys import convert_swin_to_torchvision
from robust_transfer.classification.models import create_model

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).reshape(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).reshape(3, 1, 1)


def tiny_resnet_state_dict():
    """Real torchvision ResNet key names (conv1, bn1, layerN.M..., downsample, fc) at tiny size."""
    torch.manual_seed(0)
    return create_model("resnet_tiny", 1000).state_dict()


def prefixed(state_dict, prefix):
    return {prefix + k: v for k, v in state_dict.items()}


# The containers as each project writes them (key names from their release/training code).
def robustness_layout(sd, container="model"):
    inner = {**prefixed(sd, "module.model."), **prefixed(sd, "module.attacker.model."),
             "module.normalizer.new_mean": IMAGENET_MEAN, "module.normalizer.new_std": IMAGENET_STD,
             "module.attacker.normalize.new_mean": IMAGENET_MEAN,
             "module.attacker.normalize.new_std": IMAGENET_STD}
    return {container: inner, "optimizer": {"state": {}, "param_groups": []}, "schedule": None,
            "epoch": 90, "amp": None}


def ant_layout(sd):
    return {"model_state_dict": prefixed(sd, "module."), "epoch": 100}


def deepaugment_layout(sd):
    return {"epoch": 180, "arch": "resnet50", "state_dict": prefixed(sd, "module."),
            "best_acc1": torch.tensor(76.6), "optimizer": {"state": {}, "param_groups": []}}


def prime_layout(sd):
    return {"state_dict": dict(sd)}


def prime_lightning_layout(sd):
    # PRIME's AugClassifier(AugModel(model=net, aug=PRIME module)) saved by PyTorch Lightning
    return {"epoch": 99, "global_step": 1000, "pytorch-lightning_version": "1.5.0",
            "state_dict": {**prefixed(sd, "model.model."),
                           "model.aug.preprocess.mean": IMAGENET_MEAN[None],
                           "model.aug.preprocess.std": IMAGENET_STD[None]}}


LAYOUTS = {
    "robustness": robustness_layout,
    "robustness-state_dict": lambda sd: robustness_layout(sd, "state_dict"),
    "robustness-no-dataparallel": lambda sd: {
        k.replace("module.", "", 1): v for k, v in robustness_layout(sd)["model"].items()},
    "torchvision": dict,
    "torchvision-dataparallel": lambda sd: prefixed(sd, "module."),
    "ant": ant_layout,
    "deepaugment": deepaugment_layout,
    "prime": prime_layout,
    "prime-lightning": prime_lightning_layout,
}
EXPECTED_FORMAT = {"robustness-state_dict": "robustness", "robustness-no-dataparallel": "robustness", "torchvision-dataparallel": "torchvision",
                   "prime-lightning": "prime"}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_resnet_layout_loads_from_file(tmp_path, layout):
    sd = tiny_resnet_state_dict()
    path = tmp_path / f"{layout}.pth"
    torch.save(LAYOUTS[layout](sd), path)
    model = create_model("resnet_tiny", 1000)
    converted, fmt = load_imagenet_backbone(path, model)
    assert fmt == EXPECTED_FORMAT.get(layout, layout)
    backbone = {k: v for k, v in sd.items() if not k.startswith("fc.")}
    assert converted.keys() == backbone.keys()
    assert all(torch.equal(converted[k], backbone[k]) for k in backbone)
    # with the head when asked
    with_fc, _ = load_imagenet_backbone(path, model, include_fc=True)
    assert torch.equal(with_fc["fc.weight"], sd["fc.weight"])
    model.load_state_dict(with_fc)  # strict: the layout is exactly torchvision's


def test_real_resnet50_key_names_and_mmdet_output(tmp_path):
    with torch.device("meta"):
        sd = torchvision.models.resnet50().state_dict()
    for layout, make in LAYOUTS.items():
        converted, fmt = to_torchvision_state_dict(make(sd), arch="resnet50")
        assert fmt == EXPECTED_FORMAT.get(layout, layout)
        assert set(converted) == {k for k in sd if not k.startswith("fc.")}
    mmdet = mmdet_resnet_state_dict(converted)
    assert "layer4.2.bn3.running_var" in mmdet
    assert not any(k.startswith("fc.") for k in mmdet)


def test_export_mmdet_resnet_file(tmp_path):
    with torch.device("meta"):
        meta = torchvision.models.resnet18().state_dict()
    sd = {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in meta.items()}
    src, dst = tmp_path / "l2_eps3.ckpt", tmp_path / "out" / "resnet18_mmdet.pth"
    torch.save(robustness_layout(sd), src)
    assert export_mmdet_resnet(src, dst, arch="resnet18").source_format == "robustness"
    saved = torch.load(dst, weights_only=True)
    assert set(saved["state_dict"]) == {k for k in sd if not k.startswith("fc.")}
    assert saved["meta"] == {"source_format": "robustness", "source": "l2_eps3.ckpt", "arch": "resnet18",
                             "backbone_cfg": {"type": "ResNet", "depth": 18}}
    assert [p.name for p in dst.parent.iterdir()] == [dst.name]  # no temporary file left


def test_wide_resnet50_4_is_resnet50_with_4x_wide_bottlenecks():
    shapes = expected_keys("wide_resnet50_4")
    assert shapes["layer1.0.conv2.weight"] == (256, 256, 3, 3)  # width_per_group 64 * 4
    assert shapes["layer4.2.conv3.weight"] == (2048, 2048, 1, 1)
    assert set(shapes) == set(expected_keys("resnet50"))


# ----------------------------------------------------------------------------- Swin-T


def microsoft_relative_position_index(window: int) -> torch.Tensor:
    """microsoft/Swin-Transformer's 2-D relative position index of a window (its formula)."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij"))
    flat = coords.flatten(1)
    relative = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
    relative[:, :, 0] += window - 1
    relative[:, :, 1] += window - 1
    relative[:, :, 0] *= 2 * window - 1
    return relative.sum(-1)


def to_microsoft_swin(tv_sd, window):
    """Rename torchvision Swin keys to microsoft's (the inverse of the converter, written
    independently), adding the buffers the official checkpoints carry."""
    ms = {}
    for key, value in tv_sd.items():
        parts = key.split(".")
        if parts[0] != "features":
            ms[key] = value
            continue
        index, rest = int(parts[1]), parts[2:]
        if index == 0:
            ms[".".join(["patch_embed", {"0": "proj", "2": "norm"}[rest[0]], *rest[1:]])] = value
        elif index % 2:  # a stage
            stage, block, name = (index - 1) // 2, rest[0], ".".join(rest[1:])
            name = name.replace("mlp.0.", "mlp.fc1.").replace("mlp.3.", "mlp.fc2.")
            if name == "attn.relative_position_index":
                value = microsoft_relative_position_index(window)
            ms[f"layers.{stage}.blocks.{block}.{name}"] = value
            if int(block) % 2 == 1 and name == "norm1.weight":  # shifted blocks: mask buffer
                ms[f"layers.{stage}.blocks.{block}.attn_mask"] = torch.zeros(4, window ** 2, window ** 2)
        else:  # patch merging after stage index/2 - 1
            ms[".".join([f"layers.{index // 2 - 1}.downsample", *rest])] = value
    return ms


def test_swin_t_official_keys_convert_to_torchvision_swin_t():
    with torch.device("meta"):
        tv = torchvision.models.swin_t().state_dict()
    ms = to_microsoft_swin(tv, 7)
    assert "layers.0.blocks.1.attn_mask" in ms and "layers.2.downsample.reduction.weight" in ms
    assert ms["layers.0.blocks.0.attn.relative_position_index"].shape == (49, 49)
    assert detect_checkpoint_format({"model": ms}) == "swin"
    converted, fmt = to_torchvision_state_dict({"model": ms}, arch="swin_t", include_fc=True)
    assert fmt == "swin"
    assert set(converted) == set(tv)
    without_head, _ = to_torchvision_state_dict({"model": ms}, arch="swin_t")
    assert set(without_head) == {k for k in tv if not k.startswith("head.")}


def test_swin_conversion_values_and_index_match_torchvision():
    torch.manual_seed(0)
    model = create_model("swin_tiny_test", 1000)
    tv = model.state_dict()
    ms = to_microsoft_swin(tv, 2)
    converted, _ = to_torchvision_state_dict({"model": ms}, arch=model, include_fc=True)
    assert converted.keys() == tv.keys()
    # includes relative_position_index: microsoft's 2-D formula, flattened, equals torchvision's
    assert all(torch.equal(converted[k], tv[k]) for k in tv)
    window7 = torchvision.models.swin_transformer.ShiftedWindowAttention(96, [7, 7], [0, 0], 3)
    assert torch.equal(microsoft_relative_position_index(7).flatten(), window7.relative_position_index)
    # files that dropped the constant index get it back
    stripped = {k: v for k, v in ms.items() if "relative_position_index" not in k}
    refilled, _ = to_torchvision_state_dict({"model": stripped}, arch=model, include_fc=True)
    assert all(torch.equal(refilled[k], tv[k]) for k in tv)


def test_swin_unknown_key_is_reported():
    with pytest.raises(CheckpointError, match="absolute_pos_embed"):
        convert_swin_to_torchvision({"patch_embed.proj.weight": torch.zeros(1),
                                     "absolute_pos_embed": torch.zeros(1)})


# ----------------------------------------------------------------------------- errors


def test_missing_unexpected_and_mismatched_keys_are_listed():
    sd = tiny_resnet_state_dict()
    model = create_model("resnet_tiny", 1000)
    broken = {k: v for k, v in sd.items() if k != "layer2.0.conv1.weight"}
    broken["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as info:
        to_torchvision_state_dict(broken, arch=model)
    message = str(info.value)
    assert "missing keys (layer2.0.conv1.weight)" in message and "unexpected keys (extra.weight)" in message
    with pytest.raises(CheckpointError, match="shape mismatches"):
        to_torchvision_state_dict(sd, arch="resnet18")


def test_unknown_container_and_non_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="top-level keys: epoch, weights"):
        detect_checkpoint_format({"weights": {"a": 1}, "epoch": 3})
    with pytest.raises(CheckpointError, match="does not exist"):
        load_imagenet_backbone(tmp_path / "nope.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        load_imagenet_backbone(tmp_path / "garbage.pth")
    with pytest.raises(CheckpointError, match="unknown checkpoint format"):
        extract_state_dict({"conv1.weight": torch.zeros(1)}, "caffe")


def test_weights_only_refuses_pickled_objects_with_a_hint(tmp_path):
    sd = tiny_resnet_state_dict()
    path = tmp_path / "with_args.pth.tar"
    torch.save({"state_dict": prefixed(sd, "module."), "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(CheckpointError, match="weights_only=True.*--unsafe-load"):
        load_imagenet_backbone(path, create_model("resnet_tiny"))
    converted, fmt = load_imagenet_backbone(path, create_model("resnet_tiny"), weights_only=False)
    assert fmt == "deepaugment" and "layer4.0.conv2.weight" in converted


# ----------------------------------------------------------------------------- the ResNet family

from robust_transfer.backbones.resnet_family import (RESNET_ARCHS, build_torchvision_resnet,  # noqa: E402
                                                     infer_resnet_spec, openmmlab_backbone_cfg,
                                                     resnet_spec)


@pytest.mark.parametrize("arch", list(RESNET_ARCHS))
def test_every_named_resnet_is_read_off_its_own_keys(arch):
    with torch.device("meta"):
        model = build_torchvision_resnet(resnet_spec(arch))
    assert infer_resnet_spec(model.state_dict()).name == arch


def test_torchvision_builds_the_same_keys_and_shapes_as_our_family():
    for arch in ("resnet34", "resnet101", "wide_resnet50_2", "resnext50_32x4d"):
        with torch.device("meta"):
            theirs = getattr(torchvision.models, arch)().state_dict()
        assert expected_keys(arch, include_fc=True) == {k: tuple(v.shape) for k, v in theirs.items()}


def test_not_a_resnet_and_wide_resnets_in_mmdet_are_one_line_errors():
    with pytest.raises(CheckpointError, match="not a ResNet"):
        infer_resnet_spec({"features.0.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="no wide ResNet"):
        openmmlab_backbone_cfg(resnet_spec("wide_resnet50_2"))
    assert openmmlab_backbone_cfg(resnet_spec("resnext50_32x4d")) == dict(
        type="ResNeXt", depth=50, groups=32, base_width=4)
    assert openmmlab_backbone_cfg(resnet_spec("resnet50d")) == dict(type="ResNetV1d", depth=50)


def _trained_looking(model):
    """Random weights and BatchNorm statistics, so that a wrong key order changes the output."""
    generator = torch.Generator().manual_seed(0)
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point():
            values = torch.rand(tensor.shape, generator=generator)
            tensor.copy_(values + 0.5 if name.endswith("running_var") else values * 0.2 - 0.1)
    return model.eval()


@pytest.mark.parametrize("arch,layout", [("resnet18", "torchvision"), ("resnet18d", "timm"),
                                         ("resnet50d", "timm"), ("resnext50_32x4d", "torchvision")])
def test_converted_file_gives_mmdet_the_same_features(tmp_path, arch, layout):
    """The converted weights in mmdet's backbone compute what the source network computes."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    source = _trained_looking(build_torchvision_resnet(resnet_spec(arch)))
    src, dst = tmp_path / f"{arch}.pth", tmp_path / f"{arch}_mmdet.pth"
    torch.save(source.state_dict(), src)  # torchvision and timm save bare state dicts
    report = export_mmdet_resnet(src, dst)  # architecture read off the keys
    saved = torch.load(dst, weights_only=True)
    assert saved["meta"]["arch"] == arch and report.missing == [] == report.unexpected
    register_all_modules(init_default_scope=False)
    mmdet_backbone = MODELS.build({**saved["meta"]["backbone_cfg"], "out_indices": (3,)})
    mmdet_backbone.load_state_dict(saved["state_dict"], strict=True)
    mmdet_backbone.eval()  # (mmdet's ResNet.train returns None)
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = torch.nn.Sequential(*list(source.children())[:-2])(images)
        (features,) = mmdet_backbone(images)
    torch.testing.assert_close(features, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("content", [b"not a checkpoint", b"PK\x03\x04 broken zip", b"\x80\x04K\x07.",
                                     "a text file\n".encode()])
def test_any_non_checkpoint_is_one_checkpoint_error_line(tmp_path, content):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_imagenet_backbone(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_truncated_checkpoint_is_one_checkpoint_error_line(tmp_path):
    path = tmp_path / "truncated.pth"
    torch.save(tiny_resnet_state_dict(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint") as info:
        load_imagenet_backbone(path)
    assert "\n" not in str(info.value)


def test_mmdet_converter_on_a_non_checkpoint_exits_2_with_one_line(tmp_path, capsys):
    from robust_transfer.backbones.mmdet import converter_main

    (tmp_path / "notes.pth").write_text("these are my notes")
    with pytest.raises(SystemExit) as info:
        converter_main([str(tmp_path / "notes.pth"), str(tmp_path / "out.pth")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1 and "not a readable" in err
    assert not (tmp_path / "out.pth").exists()
