"""mmsegmentation integration: synthetic ADE20K, the Corrupt plugin, the paper configs, backbone
conversion, and (slow) a tiny UperNet trained and evaluated end to end with the tools."""
from __future__ import annotations

import copy
import functools
import glob
import hashlib
import json
import os
import pprint
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robust_transfer.datasets.synthetic_ade20k import (
    ADE20K_FIRST_CLASSES, synthetic_ade20k_sample, write_synthetic_ade20k)

REPO = Path(__file__).resolve().parents[1]
MMSEG_DIR = REPO / "mmsegmentation"
TOOLS = MMSEG_DIR / "tools"
CONFIGS = MMSEG_DIR / "configs"
TINY_CONFIG = CONFIGS / "tiny" / "upernet_r18-tiny_1xb4-40it_synthetic-ade20k-64x80.py"
PAPER_CONFIGS = sorted(CONFIGS.glob("upernet/*.py")) + sorted(CONFIGS.glob("swin/*.py"))
GRID_CORRUPTIONS = ["gaussian_noise", "contrast", "jpeg_compression"]
GRID_SEVERITIES = ["0", "1", "3"]


@pytest.fixture
def mmseg_scope():
    """mmseg's modules registered and ``mmseg`` the default scope, for this test only (other
    tests in the session may use mmdet's)."""
    from mmengine.registry import DefaultScope
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope("mmseg"):
        yield


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- synthetic ADE20K


def test_synthetic_ade20k_layout_and_determinism(tmp_path):
    a = write_synthetic_ade20k(tmp_path / "a", num_train=3, num_val=2, seed=1)
    b = write_synthetic_ade20k(tmp_path / "b", num_train=5, num_val=2, seed=1)
    files_a = _tree_digest(a)
    assert sorted(files_a) == sorted([
        "annotations/training/ADE_train_00000001.png", "annotations/training/ADE_train_00000002.png",
        "annotations/training/ADE_train_00000003.png", "annotations/validation/ADE_val_00000001.png",
        "annotations/validation/ADE_val_00000002.png", "images/training/ADE_train_00000001.jpg",
        "images/training/ADE_train_00000002.jpg", "images/training/ADE_train_00000003.jpg",
        "images/validation/ADE_val_00000001.jpg", "images/validation/ADE_val_00000002.jpg"])
    files_b = _tree_digest(b)
    # same seed: same bytes, and the validation set does not depend on num_train
    assert all(files_b[name] == digest for name, digest in files_a.items())
    assert _tree_digest(write_synthetic_ade20k(tmp_path / "a", num_train=3, num_val=2, seed=1)) == files_a
    c = _tree_digest(write_synthetic_ade20k(tmp_path / "c", num_train=3, num_val=2, seed=2))
    assert c["images/validation/ADE_val_00000001.jpg"] != files_a["images/validation/ADE_val_00000001.jpg"]

    from PIL import Image

    label = Image.open(a / "annotations/validation/ADE_val_00000001.png")
    image = Image.open(a / "images/validation/ADE_val_00000001.jpg")
    assert label.mode == "L" and image.mode == "RGB" and image.size == label.size == (80, 64)
    values = np.unique(np.asarray(label))
    assert 0 in values and values.max() <= 6 and len(values) >= 3  # 0 = unlabelled, 1..6 classes


def test_synthetic_ade20k_is_learnable_and_validates_arguments():
    """The class of a pixel is in its colour: the nearest class colour labels >95% of the
    labelled pixels (a network has texture and context on top)."""
    from robust_transfer.datasets import synthetic_ade20k as sa

    hits = total = 0
    for index in range(4):
        image, label = synthetic_ade20k_sample(np.random.default_rng([0, 1, index]), num_classes=6)
        colours = sa._CLASS_COLOURS[:6]
        guess = np.argmin(((image[..., None, :].astype(float) - colours) ** 2).sum(-1), -1) + 1
        hits += int((guess == label)[label > 0].sum())
        total += int((label > 0).sum())
    assert hits / total > 0.95
    assert len(ADE20K_FIRST_CLASSES) == sa.MAX_CLASSES
    with pytest.raises(ValueError, match="num_classes"):
        synthetic_ade20k_sample(np.random.default_rng(0), num_classes=1)
    with pytest.raises(ValueError, match=">= 32"):
        synthetic_ade20k_sample(np.random.default_rng(0), image_size=(16, 64))


def test_mmseg_reads_the_synthetic_folder(tmp_path, mmseg_scope):
    from mmseg.datasets import ADE20KDataset

    root = write_synthetic_ade20k(tmp_path / "ade", num_train=2, num_val=3)
    dataset = ADE20KDataset(data_root=str(root), data_prefix=dict(
        img_path="images/validation", seg_map_path="annotations/validation"),
        pipeline=[dict(type="LoadImageFromFile"), dict(type="LoadAnnotations")])
    assert len(dataset) == 3
    sample = dataset[0]
    assert sample["img"].shape == (64, 80, 3)
    # reduce_zero_label: 0 (unlabelled) -> 255, class k -> k - 1
    assert set(np.unique(sample["gt_seg_map"])) <= set(range(6)) | {255}


# ----------------------------------------------------------------------------- the plugin


def test_plugin_registers_the_shared_corrupt_and_it_runs_in_an_mmseg_pipeline(tmp_path, mmseg_scope):
    from mmengine.config import Config
    from mmengine.dataset import Compose

    import robust_transfer.openmmlab.mmseg as plugin
    from robust_transfer.openmmlab import transforms
    from robust_transfer.openmmlab.pipeline import insert_corrupt_transform
    from mmseg.registry import TRANSFORMS

    assert TRANSFORMS.get("Corrupt") is transforms.Corrupt is plugin.Corrupt
    root = write_synthetic_ade20k(tmp_path / "ade", num_train=0, num_val=1)
    cfg = Config.fromfile(TINY_CONFIG)
    assert cfg.custom_imports.imports == ["robust_transfer.openmmlab.mmseg"]
    clean_steps = cfg.test_dataloader.dataset.pipeline
    corrupt = dict(type="Corrupt", corruption="gaussian_noise", severity=3, seed=0)
    steps = insert_corrupt_transform(clean_steps, corrupt)
    assert [s["type"] for s in steps][:2] == ["LoadImageFromFile", "Corrupt"]
    info = dict(img_path=str(root / "images/validation/ADE_val_00000001.jpg"),
                seg_map_path=str(root / "annotations/validation/ADE_val_00000001.png"),
                reduce_zero_label=True, seg_fields=[])
    clean = Compose(clean_steps)(dict(info))
    first = Compose(steps)(dict(info))
    second = Compose(steps)(dict(info))
    assert first["inputs"].shape == clean["inputs"].shape
    assert not np.array_equal(first["inputs"].numpy(), clean["inputs"].numpy())
    assert np.array_equal(first["inputs"].numpy(), second["inputs"].numpy())  # seeded
    assert np.array_equal(first["data_samples"].gt_sem_seg.data.numpy(),
                          clean["data_samples"].gt_sem_seg.data.numpy())  # labels untouched


def test_segmentation_adapter():
    from mmengine.config import Config

    from robust_transfer.openmmlab.segmentation import SEGMENTATION, describe_dataset

    assert SEGMENTATION.task == "segmentation" and SEGMENTATION.metric_scale == 100.0
    assert SEGMENTATION.headlines() == ["mIoU", "mAcc", "aAcc"]
    raw = {"aAcc": 80.5, "mIoU": 41.25, "mAcc": 50.0}
    assert SEGMENTATION.convert_metrics(raw, SEGMENTATION.headlines()) == raw
    # IoUMetric's float32 values keep their decimals (not 41.22999954223633)
    raw32 = {"aAcc": np.float32(80.51), "mIoU": np.float32(41.23), "mAcc": np.float32(50.0)}
    assert SEGMENTATION.convert_metrics(raw32, SEGMENTATION.headlines()) == {
        "aAcc": 80.51, "mIoU": 41.23, "mAcc": 50.0}
    with pytest.raises(ValueError, match="mIoU"):
        SEGMENTATION.convert_metrics({"aAcc": 1.0}, SEGMENTATION.headlines())
    cfg = Config.fromfile(TINY_CONFIG)
    SEGMENTATION.check_evaluator(cfg)
    assert describe_dataset(cfg) == "ADE20KDataset:synthetic_ade20k/images/validation"
    cfg.test_evaluator = dict(type="CityscapesMetric")
    with pytest.raises(ValueError, match="IoUMetric"):
        SEGMENTATION.check_evaluator(cfg)


# ----------------------------------------------------------------------------- paper configs


@functools.lru_cache(maxsize=None)
def _parsed(path: Path):
    from mmengine.config import Config

    return Config.fromfile(path)


def _config(path: Path):
    """A fresh copy of a parsed config (each file is parsed once per session)."""
    return copy.deepcopy(_parsed(Path(path)))


def _build_on_meta(cfg):
    """The model of ``cfg`` on the meta device (instant, no memory); on the CPU for Swin, whose
    constructor calls ``.item()``."""
    import torch
    from mmseg.registry import MODELS

    if cfg.model.backbone.type == "SwinTransformer":
        return MODELS.build(cfg.model)
    with torch.device("meta"):
        return MODELS.build(cfg.model)


@pytest.mark.parametrize("config", PAPER_CONFIGS, ids=lambda p: p.stem)
def test_paper_config_loads_and_builds(config, mmseg_scope):
    from mmengine.optim import build_optim_wrapper

    from robust_transfer.backbones import get_backbone
    from robust_transfer.backbones.mmseg import pretrained_backbone_path

    cfg = _config(config)
    assert cfg.custom_imports.imports == ["robust_transfer.openmmlab.mmseg"]
    assert cfg.train_cfg.max_iters == 80000 and cfg.crop_size == (512, 512)
    assert cfg.model.decode_head.num_classes == cfg.model.auxiliary_head.num_classes == 150
    assert cfg.test_dataloader.dataset.type == "ADE20KDataset"
    fixed = config.stem.endswith("_fixedfeature")
    assert cfg.transfer.mode == ("fixed-feature" if fixed else "full-network")
    entry = get_backbone(cfg.transfer.backbone)
    arch, filename = entry.arch, entry.mmseg_file
    path = pretrained_backbone_path(cfg)
    assert Path(path).name == filename
    assert Path(path).resolve().parent == MMSEG_DIR / "checkpoints"
    assert cfg.model.backbone.type == ("SwinTransformer" if arch == "swin_t" else "ResNet")
    if arch == "resnet50":
        assert cfg.model.backbone.depth == 50 and cfg.model.pretrained is None

    model = _build_on_meta(cfg)
    assert type(model.backbone).__name__ == cfg.model.backbone.type
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    base_lr = cfg.optim_wrapper.optimizer.lr
    backbone_params = {id(p) for p in model.backbone.parameters()}
    seen = 0
    for group in optim.optimizer.param_groups:
        for param in group["params"]:
            if id(param) in backbone_params:
                seen += 1
                if fixed:  # every backbone parameter frozen: no step, no decay
                    assert group["lr"] == 0 and group["weight_decay"] == 0
                else:
                    assert group["lr"] == base_lr
            else:
                assert group["lr"] == base_lr  # the heads always train
    assert seen == len(backbone_params)


def test_fixed_feature_configs_differ_from_full_network_only_in_the_optimizer():
    for fixed in CONFIGS.glob("*/*_fixedfeature.py"):
        full = fixed.with_name(fixed.name.replace("_fixedfeature", ""))
        a, b = _config(full).to_dict(), _config(fixed).to_dict()
        differing = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        # The schedule may differ only to keep the frozen backbone's lr at 0: PolyLR's eta_min
        # is a floor applied to every parameter group, the lr_mult=0 backbone included.
        assert set(differing) <= {"optim_wrapper", "transfer", "param_scheduler"}, (fixed.name, differing)
        assert {"optim_wrapper", "transfer"} <= set(differing), (fixed.name, differing)
        for scheduler in b["param_scheduler"]:
            if scheduler["type"] == "PolyLR":
                assert scheduler["eta_min"] == 0.0, fixed.name


# ----------------------------------------------------------------------------- backbone conversion


def _run_tool(script: Path, *args: str, timeout: int = 300, env: dict | None = None, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=cwd)
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def test_resnet50_conversion_loads_into_mmseg_resnet_and_computes_the_same(tmp_path):
    import torch
    import torchvision
    from mmengine.config import Config
    from mmseg.models.backbones import ResNet

    from robust_transfer.backbones.mmseg import check_backbone_checkpoint

    sys.path.insert(0, str(TOOLS / "model_converters"))
    try:
        import imagenet2mmseg
    finally:
        sys.path.pop(0)
    torch.manual_seed(0)
    reference = torchvision.models.resnet50(weights=None).eval()
    for m in reference.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    # the robustness library's layout: module.model.*, a second copy for the attacker, normalizer
    sd = reference.state_dict()
    published = {"model": {**{f"module.model.{k}": v for k, v in sd.items()},
                           **{f"module.attacker.model.{k}": v for k, v in sd.items()},
                           "module.normalizer.new_mean": torch.zeros(3, 1, 1)}}
    src, dst = tmp_path / "resnet50_l2_eps3.ckpt", tmp_path / "converted.pth"
    torch.save(published, src)
    assert imagenet2mmseg.main([str(src), str(dst), "--backbone", "l2_eps3"]) == 0

    cfg = Config.fromfile(CONFIGS / "upernet" / "upernet_r50_512x512_80k_ade20k_adv_l2_eps3d0.py")
    assert check_backbone_checkpoint(cfg, dst)["checked"]
    backbone = ResNet(depth=50, out_indices=(0, 1, 2, 3), style="pytorch")
    backbone.eval()  # (mmseg's ResNet.train returns None)
    backbone.load_state_dict(torch.load(dst, weights_only=True)["state_dict"], strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        outs = backbone(x)
        y = reference.maxpool(reference.relu(reference.bn1(reference.conv1(x))))
        for layer, out in zip([reference.layer1, reference.layer2, reference.layer3, reference.layer4], outs):
            y = layer(y)
            torch.testing.assert_close(out, y)

    # an unconverted file (or a Swin file) is refused with the keys named
    from robust_transfer.backbones import CheckpointError

    with pytest.raises(CheckpointError, match="missing keys"):
        check_backbone_checkpoint(cfg, src)
    assert imagenet2mmseg.main([str(tmp_path / "nope.pth"), str(dst), "--backbone", "ant"]) == 2


def _official_swin_from_torchvision(state_dict):
    """torchvision swin_t keys -> microsoft Swin-Transformer keys (inverse of
    robust_transfer.backbones.swin_keys.convert_swin_to_torchvision)."""
    official = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        if parts[0] == "features":
            index = int(parts[1])
            if index == 0:
                name = {"0": "patch_embed.proj", "2": "patch_embed.norm"}[parts[2]]
                official[f"{name}.{parts[3]}"] = value
            elif index % 2 == 1:
                stage, block, rest = (index - 1) // 2, parts[2], ".".join(parts[3:])
                rest = rest.replace("mlp.0.", "mlp.fc1.").replace("mlp.3.", "mlp.fc2.")
                if rest == "attn.relative_position_index":
                    value = value.reshape(49, 49)
                official[f"layers.{stage}.blocks.{block}.{rest}"] = value
            else:
                official[f"layers.{(index - 2) // 2}.downsample." + ".".join(parts[2:])] = value
        else:
            official[key] = value
    return official


def test_swin_conversion_loads_into_mmseg_swin_and_computes_the_same(tmp_path):
    import torch
    import torch.nn.functional as F
    import torchvision
    from mmseg.models.backbones import SwinTransformer

    from robust_transfer.backbones import CheckpointError
    from robust_transfer.backbones.mmseg import (SWIN_T_ARGS, save_mmseg_backbone,
                                                 swin_to_mmseg_state_dict)
    from robust_transfer.backbones.swin_keys import convert_swin_to_torchvision

    torch.manual_seed(0)
    reference = torchvision.models.swin_t(weights=None).eval()
    official = _official_swin_from_torchvision(reference.state_dict())
    # sanity: our inverse is the inverse of the library's converter
    back = convert_swin_to_torchvision(official)
    assert set(back) == set(reference.state_dict())
    src, dst = tmp_path / "swin_tiny_patch4_window7_224.pth", tmp_path / "swin_mmseg.pth"
    torch.save({"model": official}, src)
    assert save_mmseg_backbone("swin_t", src, dst) == "swin"

    model = SwinTransformer(**SWIN_T_ARGS, drop_path_rate=0.0)
    model.eval()
    state = torch.load(dst, weights_only=True)["state_dict"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected
    assert sorted({k.split(".")[0] for k in missing}) == ["norm0", "norm1", "norm2", "norm3"]
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        outs = model(x)  # norm_i are fresh LayerNorms (weight 1, bias 0)
        y = x
        for index, stage in enumerate(reference.features[:6]):
            y = stage(y)  # (N, H, W, C)
            if index % 2 == 1:
                expected = F.layer_norm(y, y.shape[-1:]).permute(0, 3, 1, 2)
                torch.testing.assert_close(outs[index // 2], expected, atol=1e-4, rtol=1e-4)
        # The last stage is not compared: on a 7x7 map the official code (and torchvision)
        # stops shifting windows, mmseg's Swin does not -- a property of mmseg's model, not of
        # the weights. Its patch merging (converted like the others) is checked on its own:
        n, h, w, c = y.shape
        merged, _ = model.stages[2].downsample(y.reshape(n, h * w, c), (h, w))
        torch.testing.assert_close(merged.reshape(n, h // 2, w // 2, 2 * c), reference.features[6](y),
                                   atol=1e-4, rtol=1e-4)
    # a converted file passes through unchanged; a ResNet file is refused
    assert swin_to_mmseg_state_dict(torch.load(dst, weights_only=True)).keys() == state.keys()
    with pytest.raises(CheckpointError):
        swin_to_mmseg_state_dict({"state_dict": torchvision.models.resnet18().state_dict()})


# ----------------------------------------------------------------------------- end to end (slow)


def _data_options(root: Path) -> list[str]:
    return ["--cfg-options"] + [f"{split}_dataloader.dataset.data_root={root}"
                                for split in ("train", "val", "test")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny UperNet trained 40 iterations on CPU by tools/train.py."""
    base = tmp_path_factory.mktemp("mmseg_e2e")
    root = write_synthetic_ade20k(base / "ADEChallengeData2016", num_train=8, num_val=4)
    work = base / "train"
    proc = _run_tool(TOOLS / "train.py", TINY_CONFIG, "--work-dir", work, *_data_options(root))
    checkpoint = work / "iter_40.pth"
    assert checkpoint.is_file(), proc.stderr[-3000:]
    return {"base": base, "root": root, "checkpoint": checkpoint, "train_log": proc.stdout + proc.stderr}


@pytest.fixture(scope="module")
def grid_run(trained):
    """tools/test_robustness.py over 3 corruptions x 2 severities + clean, one process."""
    out = trained["base"] / "single" / "robustness.pkl"
    args = [TINY_CONFIG, trained["checkpoint"], "--out", out, "--corruptions", *GRID_CORRUPTIONS,
            "--severities", *GRID_SEVERITIES, "--work-dir", trained["base"] / "single",
            "--show-dir", trained["base"] / "show", "--final-prints", "P", "mPC", "rPC",
            *_data_options(trained["root"])]
    proc = _run_tool(TOOLS / "test_robustness.py", *args)
    return {"args": args, "json": out.with_suffix(".json"), "proc": proc}


@pytest.mark.slow
def test_train_tool_writes_a_checkpoint_that_learned_something(trained):
    import torch

    state = torch.load(trained["checkpoint"], map_location="cpu", weights_only=False)
    assert state["meta"]["iter"] == 40
    assert "decode_head.conv_seg.weight" in state["state_dict"]


@pytest.mark.slow
def test_robustness_grid_single_process(trained, grid_run):
    from robust_transfer.results import load_results

    results = load_results(grid_run["json"])
    assert results["task"] == "segmentation" and results["metrics"] == ["mIoU", "mAcc", "aAcc"]
    assert results["metric_scale"] == 100.0 and results["transfer_mode"] == "full-network"
    cells = results["cells"]
    assert sorted(cells) == sorted(["clean", *GRID_CORRUPTIONS])
    assert list(cells["clean"]) == ["0"]
    for corruption in GRID_CORRUPTIONS:
        assert sorted(cells[corruption]) == ["1", "3"]
    for by_severity in cells.values():
        for metrics in by_severity.values():
            assert set(metrics) >= {"mIoU", "mAcc", "aAcc"}
            assert all(0.0 <= metrics[m] <= 100.0 for m in ("mIoU", "mAcc", "aAcc"))
    clean = cells["clean"]["0"]
    assert clean["aAcc"] > 40.0, clean  # the 40 iterations learned the colours
    # washing the colours out hurts a model that learned colours
    assert cells["contrast"]["3"]["mIoU"] < cells["contrast"]["1"]["mIoU"] < clean["mIoU"]
    stdout = grid_run["proc"].stdout
    for label in ("[P]", "[mPC]", "[rPC]"):
        assert label in stdout
    assert "mIoU" in stdout
    # one folder of drawings per cell
    show = trained["base"] / "show"
    assert sorted(p.name for p in show.iterdir()) == sorted(
        ["clean"] + [f"{c}_{s}" for c in GRID_CORRUPTIONS for s in (1, 3)])
    assert len(list((show / "contrast_3").rglob("*.png"))) == 4


@pytest.mark.slow
def test_robustness_resume_evaluates_nothing(grid_run, capsys):
    from robust_transfer.openmmlab.segmentation import SEGMENTATION
    from robust_transfer.openmmlab.robustness import robustness_main

    before = grid_run["json"].read_bytes()
    results = robustness_main([*map(str, grid_run["args"]), "--resume"], SEGMENTATION)
    captured = capsys.readouterr()
    assert "0 to evaluate" in captured.err
    assert grid_run["json"].read_bytes() == before
    assert len(results["cells"]) == 1 + len(GRID_CORRUPTIONS)
    assert "[mPC]" in captured.out


@pytest.mark.slow
def test_robustness_torchrun_two_cpu_processes_equals_one(trained, grid_run):
    from robust_transfer.results import load_results

    out = trained["base"] / "dist" / "robustness.pkl"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           f"--master_port={_free_port()}", str(TOOLS / "test_robustness.py"),
           str(TINY_CONFIG), str(trained["checkpoint"]), "--launcher", "pytorch", "--out", str(out),
           "--corruptions", *GRID_CORRUPTIONS, "--severities", *GRID_SEVERITIES,
           "--work-dir", str(trained["base"] / "dist"), *map(str, _data_options(trained["root"]))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-5000:]
    single = load_results(grid_run["json"])["cells"]
    distributed = load_results(out.with_suffix(".json"))["cells"]
    assert distributed == single


def _corrupted_config(tmp_path: Path, corruption: str, severity: int) -> Path:
    """A config = the tiny one with Corrupt in its test pipeline (as a user would write it)."""
    from mmengine.config import Config

    from robust_transfer.openmmlab.pipeline import insert_corrupt_transform

    pipeline = insert_corrupt_transform(
        Config.fromfile(TINY_CONFIG).test_dataloader.dataset.pipeline,
        dict(type="Corrupt", corruption=corruption, severity=severity, seed=0))
    path = tmp_path / f"tiny_{corruption}_{severity}.py"
    path.write_text(f"_base_ = {str(TINY_CONFIG)!r}\n"
                    f"test_pipeline = {pprint.pformat(pipeline)}\n"
                    "test_dataloader = dict(dataset=dict(pipeline=test_pipeline))\n")
    return path


@pytest.mark.slow
def test_mmseg_own_test_tool_with_corrupt_in_the_pipeline_matches_the_cell(trained, grid_run, tmp_path):
    """mmseg's own tools/test.py (shipped in the package) on a config whose test pipeline has
    our Corrupt gives the numbers of our tool's cell; our thin tools/test.py gives them too."""
    import mmseg

    from robust_transfer.results import load_results

    cells = load_results(grid_run["json"])["cells"]
    config = _corrupted_config(tmp_path, "jpeg_compression", 3)
    upstream = Path(mmseg.__file__).parent / ".mim" / "tools" / "test.py"
    assert upstream.is_file()
    work = tmp_path / "upstream"
    _run_tool(upstream, config, trained["checkpoint"], "--work-dir", work,
              *_data_options(trained["root"]))
    logs = glob.glob(str(work / "*" / "*.json"))
    assert len(logs) == 1
    upstream_metrics = json.loads(Path(logs[0]).read_text())
    for metric in ("mIoU", "mAcc", "aAcc"):  # the same float32 (mmengine's json has more digits)
        assert np.float32(upstream_metrics[metric]) == np.float32(cells["jpeg_compression"]["3"][metric])

    metrics_json = tmp_path / "ours.json"
    _run_tool(TOOLS / "test.py", config, trained["checkpoint"], "--work-dir", tmp_path / "ours",
              "--metrics-json", metrics_json, *_data_options(trained["root"]))
    ours = json.loads(metrics_json.read_text())
    for metric in ("mIoU", "mAcc", "aAcc"):
        assert np.float32(ours[metric]) == np.float32(cells["jpeg_compression"]["3"][metric])


def _load_tool(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"mmseg_tool_{name}", TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_tool_refuses_a_backbone_file_that_does_not_fit(tmp_path):
    """mmengine would load it with strict=False and train from random weights; we stop first."""
    import torch
    import torchvision

    bad = tmp_path / "resnet50_unconverted.pth"
    torch.save({"model_state_dict": {f"module.{k}": v for k, v in
                                     torchvision.models.resnet18().state_dict().items()}}, bad)
    train = _load_tool("train")
    with pytest.raises(SystemExit, match="missing keys.*imagenet2mmseg.py"):
        train.main([str(TINY_CONFIG), "--work-dir", str(tmp_path / "work"), "--cfg-options",
                    "model.backbone.init_cfg.type=Pretrained",
                    f"model.backbone.init_cfg.checkpoint={bad}"])
    assert not (tmp_path / "work").exists()
