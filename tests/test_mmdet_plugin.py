"""The mmdet plugin pieces without a trained model: the Corrupt transform and its registration,
placing it in a pipeline by type, the shared robustness runner's flags and metric mapping, the
synthetic COCO set, and every paper config (loads, builds its model, freezes what it says)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from robust_transfer.corruptions import corrupt
from robust_transfer.openmmlab.detection import DETECTION

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "mmdetection" / "configs"
# the backbone x transfer-mode configs (configs/prime/, PRIME during fine-tuning, are tested
# with the PRIME preprocessor)
PAPER_CONFIGS = sorted([*CONFIG_DIR.glob("mask_rcnn/*.py"), *CONFIG_DIR.glob("swin/*.py")])
TINY_CONFIG = CONFIG_DIR / "tests" / "mask-rcnn_r18-tiny_fpn_synthetic-coco.py"


@pytest.fixture(scope="module")
def plugin():
    import robust_transfer.openmmlab.mmdet as plugin

    return plugin


def _bgr_image(seed=0, h=48, w=64):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------- Corrupt


def test_corrupt_converts_bgr_to_rgb_and_keys_by_file_name(plugin):
    from robust_transfer.openmmlab.transforms import Corrupt

    bgr = _bgr_image()
    out = Corrupt("jpeg_compression", 3, seed=5)(dict(img=bgr.copy(), img_path="/x/y/0001.jpg"))
    expected = corrupt(bgr[..., ::-1].copy(), "jpeg_compression", 3, seed=5, key="0001.jpg")[..., ::-1]
    np.testing.assert_array_equal(out["img"], expected)
    assert out["corruption"] == dict(name="jpeg_compression", severity=3, seed=5, backend="numpy",
                                     key="0001.jpg")
    assert out["img"].dtype == np.uint8 and out["img"].flags.c_contiguous


def test_corrupt_is_seeded_per_image_not_by_global_state(plugin):
    from robust_transfer.openmmlab.transforms import Corrupt

    bgr = _bgr_image()
    t = Corrupt("gaussian_noise", 2, seed=1)
    a = t(dict(img=bgr.copy(), img_path="a/0001.jpg"))["img"]
    np.random.seed(123)
    b = t(dict(img=bgr.copy(), img_path="other/dir/0001.jpg"))["img"]  # same basename
    c = t(dict(img=bgr.copy(), img_path="a/0002.jpg"))["img"]
    d = Corrupt("gaussian_noise", 2, seed=2)(dict(img=bgr.copy(), img_path="a/0001.jpg"))["img"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)
    # fallback keys: img_id, then sample_idx
    e = t(dict(img=bgr.copy(), img_id=7))["img"]
    np.testing.assert_array_equal(e, corrupt(bgr[..., ::-1].copy(), "gaussian_noise", 2, seed=1, key=7)[..., ::-1])
    with pytest.raises(KeyError, match="img_path"):
        t(dict(img=bgr.copy()))


def test_corrupt_grey_image_and_bad_arguments(plugin):
    from robust_transfer.openmmlab.transforms import Corrupt

    grey = _bgr_image()[..., 0]
    out = Corrupt("contrast", 2)(dict(img=grey.copy(), img_path="g.png"))["img"]
    np.testing.assert_array_equal(out, corrupt(grey, "contrast", 2, key="g.png"))
    with pytest.raises(ValueError, match="unknown corruption 'fogg'"):
        Corrupt("fogg")
    with pytest.raises(ValueError, match="1..5"):
        Corrupt("fog", severity=0)
    with pytest.raises(ValueError, match="backend"):
        Corrupt("fog", backend="cuda")
    with pytest.raises(ValueError, match="uint8"):
        Corrupt("fog")(dict(img=_bgr_image().astype(np.float32), img_path="f.jpg"))


def test_plugin_overrides_mmdets_corrupt_so_its_configs_keep_working(plugin):
    from mmdet.registry import TRANSFORMS
    from mmengine.registry import DefaultScope

    from robust_transfer.openmmlab.transforms import Corrupt

    assert TRANSFORMS.get("Corrupt") is Corrupt
    with DefaultScope.overwrite_default_scope("mmdet"):
        t = TRANSFORMS.build(dict(type="Corrupt", corruption="fog", severity=3))  # mmdet's arguments
    assert isinstance(t, Corrupt) and (t.seed, t.backend) == (0, "numpy")


def test_legacy_flag_reproduces_mmdets_transform(plugin, reference):
    """mmdet's Corrupt hands the BGR image to imagecorruptions as if it were RGB; our
    legacy_bgr_as_rgb=True does the same and gives its bytes for a deterministic corruption."""
    from mmdet.datasets.transforms.transforms import Corrupt as MmdetCorrupt

    from robust_transfer.openmmlab.transforms import Corrupt

    bgr = _bgr_image(3, 64, 64)
    theirs = MmdetCorrupt("jpeg_compression", 2)(dict(img=bgr.copy()))["img"]
    legacy = Corrupt("jpeg_compression", 2, legacy_bgr_as_rgb=True)(dict(img=bgr.copy(), img_path="a.jpg"))["img"]
    ours = Corrupt("jpeg_compression", 2)(dict(img=bgr.copy(), img_path="a.jpg"))["img"]
    np.testing.assert_array_equal(legacy, theirs)
    assert not np.array_equal(ours, theirs)  # colour-space corruption: channel order matters
    for name in ("brightness", "contrast", "pixelate"):  # channel-symmetric: same either way
        theirs = MmdetCorrupt(name, 2)(dict(img=bgr.copy()))["img"]
        ours = Corrupt(name, 2)(dict(img=bgr.copy(), img_path="a.jpg"))["img"]
        assert np.abs(ours.astype(int) - theirs).max() <= 1, name


# ----------------------------------------------------------------------------- pipelines


def test_insert_corrupt_after_the_image_loading_step_found_by_type():
    from robust_transfer.openmmlab.pipeline import insert_corrupt_transform

    cfg = dict(type="Corrupt", corruption="fog", severity=2, seed=0, backend="numpy")
    pipeline = [dict(type="Foo"), dict(type="mmdet.LoadImageFromFile", backend_args=None),
                dict(type="Resize", scale=(8, 8)), dict(type="PackDetInputs")]
    out = insert_corrupt_transform(pipeline, cfg)
    assert [s["type"] for s in out] == ["Foo", "mmdet.LoadImageFromFile", "Corrupt", "Resize", "PackDetInputs"]
    assert len(pipeline) == 4  # not modified in place
    out[1]["backend_args"] = "changed"
    assert pipeline[1]["backend_args"] is None  # deep copy
    ndarray = insert_corrupt_transform([dict(type="LoadImageFromNDArray"), dict(type="Pack")], dict(corruption="fog"))
    assert [s["type"] for s in ndarray] == ["LoadImageFromNDArray", "Corrupt", "Pack"]
    assert insert_corrupt_transform(pipeline, None) == pipeline
    with pytest.raises(ValueError, match=r"no image-loading step .*\['Resize', 'PackDetInputs'\]"):
        insert_corrupt_transform(pipeline[2:], cfg)
    with pytest.raises(ValueError, match="already has a Corrupt step"):
        insert_corrupt_transform(out, cfg)


def test_pipeline_swap_on_a_built_dataset(plugin, tmp_path):
    from mmdet.registry import DATASETS
    from mmengine.registry import DefaultScope

    from robust_transfer.datasets.synthetic_coco import CLASSES, write_synthetic_coco
    from robust_transfer.openmmlab.pipeline import swap_dataset_pipeline

    data = write_synthetic_coco(tmp_path, num_train=0, num_val=2, image_size=(48, 64))
    ds_cfg = dict(type="CocoDataset", data_root=str(data.root), ann_file="annotations/instances_val.json",
                  data_prefix=dict(img="val/"), metainfo=dict(classes=CLASSES), test_mode=True,
                  pipeline=[dict(type="LoadImageFromFile")])
    with DefaultScope.overwrite_default_scope("mmdet"):
        dataset = DATASETS.build(ds_cfg)
        clean = dataset[0]["img"]
        swap_dataset_pipeline(dataset, ds_cfg, dict(type="Corrupt", corruption="gaussian_noise", severity=3))
        noisy = dataset[0]
        swap_dataset_pipeline(dataset, ds_cfg, None)
        again = dataset[0]["img"]
    assert noisy["corruption"]["key"] == Path(noisy["img_path"]).name
    assert not np.array_equal(noisy["img"], clean)
    np.testing.assert_array_equal(again, clean)


# ----------------------------------------------------------------------------- runner pieces


def test_parser_has_mmdets_flags_and_ours():
    from robust_transfer.openmmlab.robustness import build_robustness_parser, cells_from_args

    p = build_robustness_parser("detection")
    args = p.parse_args(["c.py", "w.pth", "--out", "r.pkl", "--corruptions", "noise", "fog",
                         "--severities", "0", "1", "--work-dir", "w", "--seed", "3", "--launcher",
                         "pytorch", "--final-prints", "P", "rPC", "--final-prints-aggregate", "all",
                         "--cfg-options", "a.b=1", "--show-dir", "s", "--backend", "numpy",
                         "--resume", "--shard", "1/2"])
    assert args.cfg_options == {"a.b": 1} and args.resume and args.final_prints == ["P", "rPC"]
    cells = cells_from_args(args)
    assert [str(c) for c in cells] == ["gaussian_noise@1", "impulse_noise@1"]  # shard 1 of 2 of 5
    args = p.parse_args(["c.py", "w.pth", "--corruptions", "None"])
    assert [str(c) for c in cells_from_args(args)] == ["clean"]
    args = p.parse_args(["c.py", "w.pth", "--corruptions", "holdout", "--severities", "3"])
    assert len(cells_from_args(args)) == 4
    with pytest.raises(ValueError, match="unknown corruption or group 'fgo'"):
        cells_from_args(p.parse_args(["c.py", "w.pth", "--corruptions", "fgo"]))
    with pytest.raises(SystemExit):
        p.parse_args(["c.py", "w.pth", "--final-prints", "X"])


def test_adapter_maps_metric_names(plugin):
    from mmengine.config import ConfigDict

    adapter = DETECTION
    raw = {"coco/bbox_mAP": 0.5, "coco/bbox_mAP_50": np.float64(0.7), "coco/segm_mAP": 0.4, "note": "x"}
    assert adapter.convert_metrics(raw, ["bbox_mAP", "segm_mAP"]) == {
        "bbox_mAP": 0.5, "bbox_mAP_50": 0.7, "segm_mAP": 0.4}
    with pytest.raises(ValueError, match=r"no \['segm_mAP'\]"):
        adapter.convert_metrics({"coco/bbox_mAP": 0.5}, ["bbox_mAP", "segm_mAP"])
    box_only = ConfigDict(test_evaluator=dict(type="CocoMetric", metric="bbox"))
    assert adapter.headlines(box_only) == ["bbox_mAP"]
    both = ConfigDict(test_evaluator=dict(type="CocoMetric", metric=["bbox", "segm"]))
    assert adapter.headlines(both) == ["bbox_mAP", "segm_mAP"]


def test_summary_print_skips_missing_cells(plugin, capsys):
    from robust_transfer.openmmlab.robustness import print_robustness_summary
    from robust_transfer.results import new_results, set_cell

    r = new_results(task="detection", model="m", metrics=["bbox_mAP"],
                    extra=dict(corruptions=["fog", "snow"], severities=[0, 1, 2]))
    set_cell(r, "clean", 0, {"bbox_mAP": 0.4})
    set_cell(r, "fog", 1, {"bbox_mAP": 0.2})
    set_cell(r, "fog", 2, {"bbox_mAP": 0.1})
    set_cell(r, "snow", 1, {"bbox_mAP": 0.3})  # snow@2 missing: not averaged in as 0
    s = print_robustness_summary(r, DETECTION, ["P", "mPC", "rPC"])["bbox_mAP"]
    assert s.mPC == pytest.approx(0.2) and s.rPC == pytest.approx(0.5) and s.missing == [("snow", 2)]
    out = capsys.readouterr().out
    assert "Mean Performance under Corruption [mPC] (bbox)\nmAP   =  0.200" in out
    assert "mAP   => 50.0 %" in out


# ----------------------------------------------------------------------------- synthetic COCO


def test_synthetic_coco_is_deterministic_real_coco(tmp_path):
    from pycocotools.coco import COCO

    from robust_transfer.datasets.synthetic_coco import CLASSES, write_synthetic_coco

    a = write_synthetic_coco(tmp_path / "a", num_train=3, num_val=4, image_size=(64, 80), seed=1)
    b = write_synthetic_coco(tmp_path / "b", num_train=3, num_val=4, image_size=(64, 80), seed=1)
    files_a = sorted(p.relative_to(a.root) for p in a.root.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b.root) for p in b.root.rglob("*") if p.is_file())
    for rel in files_a:
        assert (a.root / rel).read_bytes() == (b.root / rel).read_bytes(), rel
    doc = json.loads(a.ann_file("val").read_text())
    assert {"info", "licenses", "images", "annotations", "categories"} <= set(doc)
    assert [c["name"] for c in doc["categories"]] == list(CLASSES)
    coco = COCO(str(a.ann_file("val")))
    kinds = set()
    for ann in coco.loadAnns(coco.getAnnIds()):
        mask = coco.annToMask(ann)
        assert mask.sum() == ann["area"] > 0 and ann["iscrowd"] == 0
        x, y, w, h = ann["bbox"]
        ys, xs = np.nonzero(mask)
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x, y, x + w, y + h)
        kinds.add("rle" if isinstance(ann["segmentation"], dict) else "polygon")
    info = coco.loadImgs(coco.getImgIds())[0]
    assert (info["height"], info["width"]) == (64, 80) and (a.image_dir("val") / info["file_name"]).is_file()
    c = write_synthetic_coco(tmp_path / "c", num_train=0, num_val=8, image_size=(64, 80), seed=1)
    kinds |= {"rle" if isinstance(x["segmentation"], dict) else "polygon"
              for x in json.loads(c.ann_file("val").read_text())["annotations"]}
    assert kinds == {"rle", "polygon"}
    with pytest.raises(ValueError, match=">= 32"):
        write_synthetic_coco(tmp_path / "d", image_size=(16, 64))


# ----------------------------------------------------------------------------- configs


@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=lambda p: p.stem)
def test_paper_config_loads_and_builds_its_model(plugin, path):
    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope

    cfg = Config.fromfile(str(path))
    assert cfg.custom_imports["imports"] == ["robust_transfer.openmmlab.mmdet"]
    transfer = cfg.transfer
    assert transfer["mode"] == ("fixed-feature" if path.stem.endswith("_fixedfeature") else "full-network")
    assert cfg.model.backbone.init_cfg.checkpoint == cfg.backbone_checkpoint
    assert cfg.train_cfg.max_epochs == 24
    steps = [s for s in cfg.param_scheduler if s["type"] == "MultiStepLR"][0]
    warmup = [s for s in cfg.param_scheduler if s["type"] == "LinearLR"][0]
    assert steps["milestones"] == [16, 22] and (warmup["end"], warmup["by_epoch"]) == (500, False)
    optimizer = cfg.optim_wrapper.optimizer
    if cfg.model.backbone.type == "ResNet":
        assert (optimizer.type, optimizer.lr, optimizer.momentum, optimizer.weight_decay) == ("SGD", 0.04, 0.9, 1e-4)
        assert cfg.model.backbone.norm_eval is True and cfg.model.backbone.frozen_stages == 1
    else:
        assert transfer["backbone"] == "swin_t" and optimizer.type == "AdamW"
    # ResNet models on the meta device (names and shapes without allocating weights); Swin's
    # constructor calls .item() on a tensor, which meta tensors refuse.
    device = "meta" if cfg.model.backbone.type == "ResNet" else "cpu"
    with DefaultScope.overwrite_default_scope("mmdet"), torch.device(device):
        model = MODELS.build(cfg.model)
        assert type(model).__name__ == "MaskRCNN"
        if transfer["mode"] == "fixed-feature":
            wrapper_cfg = dict(cfg.optim_wrapper, type="OptimWrapper")  # AMP needs CUDA
            wrapper = build_optim_wrapper(model, wrapper_cfg)
            names = {id(p): n for n, p in model.named_parameters()}
            lrs = {names[id(p)]: g["lr"] for g in wrapper.optimizer.param_groups for p in g["params"]}
            backbone = {n: lr for n, lr in lrs.items() if n.startswith("backbone.")}
            assert backbone and all(lr == 0 for lr in backbone.values()), \
                [n for n, lr in backbone.items() if lr != 0][:5]
            assert any(lr > 0 for n, lr in lrs.items() if not n.startswith("backbone."))


def test_there_is_a_config_per_backbone_and_mode():
    backbones = {"", "ant_", "deepaug_augmix_", "prime_", "adv_l2_eps0d1_", "adv_l2_eps1d0_",
                 "adv_l2_eps3d0_", "adv_l2_eps5d0_"}
    names = {p.name for p in PAPER_CONFIGS}
    for b in backbones:
        for suffix in ("", "_fixedfeature"):
            assert f"mask_rcnn_r50_{b}fpn_2x_lr0.04_coco{suffix}.py" in names
    assert {"mask_rcnn_swin-t-p4-w7_fpn_fp16_ms-crop-2x_coco.py",
            "mask_rcnn_swin-t-p4-w7_fpn_fp16_ms-crop-2x_coco_fixedfeature.py"} <= names
    assert len(PAPER_CONFIGS) == 18


def test_tiny_config_builds(plugin):
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    cfg = Config.fromfile(str(TINY_CONFIG))
    with DefaultScope.overwrite_default_scope("mmdet"):
        model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) < 2_000_000


def test_runner_refuses_a_test_pipeline_without_image_loading_before_building(plugin, tmp_path, capsys):
    from robust_transfer.openmmlab.robustness import robustness_main

    config = tmp_path / "no_loader.py"
    config.write_text(f"_base_ = {str(TINY_CONFIG)!r}\n"
                      "test_dataloader = dict(dataset=dict(pipeline=[dict(type='PackDetInputs')]))\n")
    checkpoint = tmp_path / "model.pth"
    checkpoint.write_bytes(b"")
    with pytest.raises(SystemExit) as exit_info:
        robustness_main([str(config), str(checkpoint), "--corruptions", "fog", "--severities", "1",
                         "--work-dir", str(tmp_path / "w")], DETECTION)
    assert exit_info.value.code == 2
    assert "no image-loading step" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
    with pytest.raises(SystemExit):
        robustness_main([str(config), str(tmp_path / "missing.pth")], DETECTION)
    assert "is not a file" in capsys.readouterr().err


def test_a_cell_without_any_detection_scores_zero_ap():
    from robust_transfer.openmmlab.adapter import TaskAdapter

    assert DETECTION.convert_metrics({}, ["bbox_mAP", "segm_mAP"]) == {"bbox_mAP": 0.0, "segm_mAP": 0.0}
    with pytest.raises(ValueError, match="returned no"):
        TaskAdapter(task="t", headline_metrics=["x"]).convert_metrics({}, ["x"])
    with pytest.raises(ValueError, match="returned no"):  # a partial result is still an error
        DETECTION.convert_metrics({"coco/bbox_mAP": 0.1}, ["bbox_mAP", "segm_mAP"])


def test_one_walk_through_dataset_wrappers_and_one_amp_semantics():
    from mmengine.config import ConfigDict

    from robust_transfer.openmmlab.pipeline import dataset_leaves, dataset_pipelines, leaf_dataset_cfg
    from robust_transfer.openmmlab.runner import enable_amp

    a = dict(type="CocoDataset", pipeline=["a"])
    b = dict(type="CocoDataset", pipeline=["b"])
    wrapped = dict(type="RepeatDataset", dataset=dict(type="ConcatDataset", datasets=[a, b]))
    assert dataset_pipelines(wrapped) == [["a"], ["b"]]
    assert leaf_dataset_cfg(wrapped) is a and leaf_dataset_cfg({"type": "X"}) == {"type": "X"}
    assert [leaf for leaf, built in dataset_leaves(wrapped)] == [a, b]

    class Built:  # a built RepeatDataset whose inner dataset has no pipeline: skipped
        dataset = object()
    assert list(dataset_leaves(dict(dataset=a), Built())) == []

    cfg = ConfigDict(optim_wrapper=dict(type="OptimWrapper", optimizer=dict(type="SGD")))
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == "AmpOptimWrapper" and cfg.optim_wrapper.loss_scale == "dynamic"
    cfg = ConfigDict(optim_wrapper=dict(optimizer=dict(type="SGD"), loss_scale=512.0))
    enable_amp(cfg)
    assert cfg.optim_wrapper.loss_scale == 512.0  # a config's own loss scale is kept
    with pytest.raises(ValueError, match="--amp works with optim_wrapper type OptimWrapper"):
        enable_amp(ConfigDict(optim_wrapper=dict(type="ApexOptimWrapper")))
