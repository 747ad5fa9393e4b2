"""mmdetection/tools/model_converters/*: each published layout (synthetic weights, real key
layout) becomes a file mmdet's backbone loads, with the classifier and wrappers dropped."""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
CONVERTERS = REPO / "mmdetection" / "tools" / "model_converters"


@pytest.fixture(scope="module")
def resnet18():
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).state_dict()


def _layouts(sd):
    """The containers and prefixes of each release (see robust_transfer/backbones/formats.py)."""
    mod = {f"module.{k}": v for k, v in sd.items()}
    robustness = {f"module.model.{k}": v for k, v in sd.items()}
    robustness |= {f"module.attacker.model.{k}": v for k, v in sd.items()}
    for owner in ("module.normalizer", "module.attacker.normalize"):
        robustness[f"{owner}.new_mean"] = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
        robustness[f"{owner}.new_std"] = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    return {
        "torchvision2mmdet": dict(sd),
        "ant2mmdet": {"model_state_dict": mod, "epoch": 10},
        "deepaug2mmdet": {"state_dict": mod, "epoch": 30, "arch": "resnet50",
                          "optimizer": {"state": {0: {"momentum_buffer": torch.zeros(2)}}, "param_groups": []}},
        "prime2mmdet": {"state_dict": {f"model.model.{k}": v for k, v in sd.items()}
                        | {"model.aug.filter.weight": torch.zeros(3)}},
        "robustness2mmdet": {"model": robustness, "epoch": 90},
    }


def _run_converter(name, argv, capsys):
    old = sys.argv
    sys.argv = [str(CONVERTERS / f"{name}.py"), *map(str, argv)]
    try:
        runpy.run_path(str(CONVERTERS / f"{name}.py"), run_name="__main__")
    finally:
        sys.argv = old
    return capsys.readouterr().out


@pytest.mark.parametrize("name", ["torchvision2mmdet", "ant2mmdet", "deepaug2mmdet", "prime2mmdet",
                                  "robustness2mmdet"])
def test_resnet_converters(name, resnet18, tmp_path, capsys):
    from mmdet.models.backbones import ResNet

    src, dst = tmp_path / "src.pth", tmp_path / "out" / "backbone.pth"
    torch.save(_layouts(resnet18)[name], src)
    out = _run_converter(name, [src, dst, "--arch", "resnet18"], capsys)
    assert "missing none; unexpected none" in out and "fc.* (2)" in out
    written = torch.load(dst, weights_only=True)["state_dict"]
    assert set(written) == {k for k in resnet18 if not k.startswith("fc.")}
    assert all(torch.equal(written[k], resnet18[k]) for k in written)
    ResNet(depth=18).load_state_dict(written, strict=True)
    if name == "robustness2mmdet":  # the attacker's copy and the normalizers are dropped, reported
        assert "model.module.attacker.model.* (120)" in out and "model.module.normalizer.* (2)" in out
    # the generic converter detects the layout itself
    auto = tmp_path / "auto.pth"
    _run_converter("resnet2mmdet", [src, auto, "--arch", "resnet18"], capsys)
    assert set(torch.load(auto, weights_only=True)["state_dict"]) == set(written)


def test_resnet_converter_reports_a_wrong_file(resnet18, tmp_path, capsys):
    src = tmp_path / "bad.pth"
    broken = {k: v for k, v in resnet18.items() if not k.startswith("layer4.1.")}
    torch.save({"model_state_dict": {f"module.{k}": v for k, v in broken.items()}}, src)
    with pytest.raises(SystemExit) as exit_info:
        _run_converter("ant2mmdet", [src, tmp_path / "o.pth", "--arch", "resnet18"], capsys)
    assert exit_info.value.code == 2  # bad input: exit 2, as every command
    assert "missing keys" in capsys.readouterr().err
    assert not (tmp_path / "o.pth").exists()


def _microsoft_swin_t(generator):
    """A state dict with the key layout and shapes of swin_tiny_patch4_window7_224.pth."""
    sd = {}

    def put(key, *shape):
        sd[key] = torch.randn(*shape, generator=generator)

    dims, depths, heads, window = 96, (2, 2, 6, 2), (3, 6, 12, 24), 7
    put("patch_embed.proj.weight", dims, 3, 4, 4)
    put("patch_embed.proj.bias", dims)
    put("patch_embed.norm.weight", dims)
    put("patch_embed.norm.bias", dims)
    resolution = 56
    for i, (depth, nh) in enumerate(zip(depths, heads)):
        c = dims * 2 ** i
        for j in range(depth):
            p = f"layers.{i}.blocks.{j}."
            for norm in ("norm1", "norm2"):
                put(p + f"{norm}.weight", c)
                put(p + f"{norm}.bias", c)
            put(p + "attn.relative_position_bias_table", (2 * window - 1) ** 2, nh)
            sd[p + "attn.relative_position_index"] = torch.zeros(window ** 2, window ** 2, dtype=torch.long)
            put(p + "attn.qkv.weight", 3 * c, c)
            put(p + "attn.qkv.bias", 3 * c)
            put(p + "attn.proj.weight", c, c)
            put(p + "attn.proj.bias", c)
            put(p + "mlp.fc1.weight", 4 * c, c)
            put(p + "mlp.fc1.bias", 4 * c)
            put(p + "mlp.fc2.weight", c, 4 * c)
            put(p + "mlp.fc2.bias", c)
            if j % 2 == 1 and resolution > window:
                sd[p + "attn_mask"] = torch.zeros((resolution // window) ** 2, window ** 2, window ** 2)
        if i < 3:
            put(f"layers.{i}.downsample.reduction.weight", 2 * c, 4 * c)
            put(f"layers.{i}.downsample.norm.weight", 4 * c)
            put(f"layers.{i}.downsample.norm.bias", 4 * c)
        resolution //= 2
    put("norm.weight", dims * 8)
    put("norm.bias", dims * 8)
    put("head.weight", 1000, dims * 8)
    put("head.bias", 1000)
    return sd


def test_swin_converter(tmp_path, capsys):
    import robust_transfer.openmmlab.mmdet  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.config import ConfigDict
    from mmengine.registry import DefaultScope

    sd = _microsoft_swin_t(torch.Generator().manual_seed(0))
    src, dst = tmp_path / "swin_tiny_patch4_window7_224.pth", tmp_path / "swin_mmdet.pth"
    torch.save({"model": sd}, src)
    out = _run_converter("swin2mmdet", [src, dst], capsys)
    assert "head.* (2)" in out and "*.attn_mask (" in out and "unexpected none" in out
    assert "missing 8 (norm0.bias" in out  # mmdet's per-stage output norms are new
    written = torch.load(dst, weights_only=True)["state_dict"]
    assert all(k.startswith("backbone.") for k in written)
    assert not any(k.endswith("attn_mask") or k.startswith("backbone.head") for k in written)
    with DefaultScope.overwrite_default_scope("mmdet"):
        model = MODELS.build(dict(type="SwinTransformer", embed_dims=96, depths=[2, 2, 6, 2],
                                  num_heads=[3, 6, 12, 24], window_size=7, convert_weights=False,
                                  init_cfg=ConfigDict(type="Pretrained", checkpoint=str(dst))))
    model.init_weights()
    state = model.state_dict()
    assert torch.equal(state["patch_embed.projection.weight"], sd["patch_embed.proj.weight"])
    assert torch.equal(state["stages.2.blocks.5.attn.w_msa.qkv.weight"], sd["layers.2.blocks.5.attn.qkv.weight"])
    assert torch.equal(state["stages.1.blocks.0.ffn.layers.1.weight"], sd["layers.1.blocks.0.mlp.fc2.weight"])
