"""``--corrupted-root``: the detection/segmentation robustness tools read a ``corrupt-dir --format
png`` tree instead of corrupting on the fly, with the same images (so the same results), and
refuse a tree that does not fit the run in one line, before any model is built."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "mmdetection" / "tools"
TINY_CONFIG = REPO / "mmdetection" / "configs" / "tests" / "mask-rcnn_r18-tiny_fpn_synthetic-coco.py"
SEED = 3
CELLS = (["gaussian_noise", "frost"], ["0", "2"])  # a noise and an overlay corruption, + clean


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    """Synthetic COCO, and its validation images corrupted into a tree (numpy backend, SEED)."""
    from robust_transfer.corruptions.export import corrupt_directory
    from robust_transfer.datasets.synthetic_coco import write_synthetic_coco

    ws = tmp_path_factory.mktemp("corrupted_root")
    data = write_synthetic_coco(ws / "data", num_train=16, num_val=8, image_size=(96, 128))
    corrupt_directory(data.root / "val", ws / "tree", CELLS[0], [2], seed=SEED, backend="numpy",
                      progress=False, output_format="png")
    return ws, data.root


def _env(data_root: Path) -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", SYNTHETIC_COCO_ROOT=str(data_root))


def _robustness(ws: Path, data_root: Path, checkpoint, out: str, *extra) -> subprocess.CompletedProcess:
    cmd = [sys.executable, TOOLS / "test_robustness.py", TINY_CONFIG, checkpoint, "--out", ws / out / "r.pkl",
           "--corruptions", *CELLS[0], "--severities", *CELLS[1], "--seed", str(SEED),
           "--work-dir", ws / "work", *extra]
    return subprocess.run([str(c) for c in cmd], cwd=ws, env=_env(data_root), capture_output=True,
                          text=True, timeout=300)


# ----------------------------------------------------------------------------- the images


def _load(pipeline, img_path: Path) -> np.ndarray:
    from mmengine.dataset import Compose

    return Compose(pipeline)({"img_path": str(img_path), "img_id": 0})["img"]


def test_tree_images_are_the_images_corrupt_makes(coco):
    """Per image and cell, the loaded tree file equals the image Corrupt makes after loading."""
    import robust_transfer.openmmlab.mmdet  # noqa: F401  (registers Corrupt in mmdet's TRANSFORMS)
    from mmengine.registry import DefaultScope

    from robust_transfer.grid import Cell
    from robust_transfer.openmmlab.pipeline import corrupt_transform_cfg, insert_corrupt_transform
    from robust_transfer.openmmlab.pregenerated import STEP_TYPE, UseCorruptedFile

    from mmdet.registry import TRANSFORMS

    TRANSFORMS.register_module(name=STEP_TYPE, module=UseCorruptedFile, force=True)
    ws, data_root = coco
    plain = [dict(type="LoadImageFromFile")]
    from_tree = [dict(type=STEP_TYPE, root=str(ws / "tree")), dict(type="LoadImageFromFile")]
    with DefaultScope.overwrite_default_scope("mmdet"):
        for cell in (Cell("gaussian_noise", 2), Cell("frost", 2)):
            corrupt_cfg = corrupt_transform_cfg(cell, SEED, "numpy")
            on_the_fly = insert_corrupt_transform(plain, corrupt_cfg)
            pregenerated = insert_corrupt_transform(from_tree, corrupt_cfg)
            assert [s["type"] for s in pregenerated] == [STEP_TYPE, "LoadImageFromFile"]
            for image in sorted((data_root / "val").glob("*.jpg")):
                expected, got = _load(on_the_fly, image), _load(pregenerated, image)
                assert not np.array_equal(expected, _load(plain, image))  # really corrupted
                np.testing.assert_array_equal(got, expected)
        clean = insert_corrupt_transform(from_tree, None)  # the clean cell reads the clean file
        image = sorted((data_root / "val").glob("*.jpg"))[0]
        np.testing.assert_array_equal(_load(clean, image), _load(plain, image))


def test_corrupt_dir_keys_images_by_file_name_like_the_transform(tmp_path):
    from PIL import Image

    from robust_transfer.corruptions import corrupt
    from robust_transfer.corruptions.export import corrupt_directory

    rng = np.random.default_rng(0)
    (tmp_path / "in" / "nested").mkdir(parents=True)
    clean = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(clean).save(tmp_path / "in" / "nested" / "x.jpg", quality=90)
    corrupt_directory(tmp_path / "in", tmp_path / "out", ["shot_noise"], [1], seed=5,
                      progress=False, output_format="png")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["images"] == {"nested/x.jpg": "nested/x.png"}
    assert (manifest["image_key"], manifest["seed_scheme"], manifest["output_format"]) == \
        ("basename", "robust_transfer.corruptions/v1", "png")
    decoded = np.asarray(Image.open(tmp_path / "in" / "nested" / "x.jpg"))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "shot_noise" / "1" / "nested" / "x.png")),
                                  corrupt(decoded, "shot_noise", 1, seed=5, key="x.jpg"))


# ----------------------------------------------------------------------------- refusals


@pytest.fixture
def fake_checkpoint(tmp_path):
    import torch

    path = tmp_path / "model.pth"
    torch.save({"state_dict": {}}, path)
    return path


def _refused(proc: subprocess.CompletedProcess, *expected: str) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("test_robustness.py: error: --corrupted-root"), proc.stderr
    for text in expected:
        assert text in line, line
    return line


def test_tree_written_with_another_seed_is_refused(coco, fake_checkpoint):
    ws, data_root = coco
    proc = _robustness(ws, data_root, fake_checkpoint, "seed", "--corrupted-root", ws / "tree", "--seed", "4")
    _refused(proc, "seed 3 (this run: 4)")
    assert not (ws / "seed").exists()


def test_tree_lacking_cells_and_images_is_refused_listing_them(coco, fake_checkpoint, tmp_path):
    from robust_transfer.corruptions.export import corrupt_directory

    ws, data_root = coco
    partial = tmp_path / "val_part"
    partial.mkdir()
    for image in sorted((data_root / "val").glob("*.jpg"))[:3]:
        (partial / image.name).write_bytes(image.read_bytes())
    corrupt_directory(partial, tmp_path / "tree", ["gaussian_noise"], [2], seed=SEED,
                      progress=False, output_format="png")
    proc = _robustness(ws, data_root, fake_checkpoint, "partial", "--corrupted-root", tmp_path / "tree")
    _refused(proc, "lacks images the grid needs", "gaussian_noise@2 (5 of 8 images)",
             "frost@2 (8 of 8 images)", "images e.g. 000000001001.jpg", "... and 3 more")
    assert not (ws / "partial").exists()


def test_tree_without_manifest_and_batch_mode_are_refused(coco, fake_checkpoint, tmp_path):
    ws, data_root = coco
    _refused(_robustness(ws, data_root, fake_checkpoint, "none", "--corrupted-root", tmp_path),
             "no manifest.json", "--format png")
    _refused(_robustness(ws, data_root, fake_checkpoint, "batch", "--corrupted-root", ws / "tree",
                         "--corrupt-on", "batch", "--backend", "torch"), "--corrupt-on batch")


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_same_results_as_corrupting_on_the_fly(coco):
    """The tiny Mask R-CNN trained for 40 iterations, evaluated both ways on 2 cells + clean."""
    ws, data_root = coco
    train = subprocess.run([sys.executable, str(TOOLS / "train.py"), str(TINY_CONFIG), "--work-dir",
                            str(ws / "train"), "--cfg-options", "val_cfg=None", "val_dataloader=None",
                            "val_evaluator=None"], cwd=ws, env=_env(data_root), capture_output=True,
                           text=True, timeout=600)
    assert train.returncode == 0, train.stderr[-3000:]
    checkpoint = ws / "train" / "iter_40.pth"
    on_the_fly = _robustness(ws, data_root, checkpoint, "fly", "--backend", "numpy")
    from_tree = _robustness(ws, data_root, checkpoint, "tree_run", "--corrupted-root", ws / "tree")
    for proc in (on_the_fly, from_tree):
        assert proc.returncode == 0, proc.stderr[-3000:]
    a = json.loads((ws / "fly" / "r.json").read_text())
    b = json.loads((ws / "tree_run" / "r.json").read_text())
    assert set(a["cells"]) == {"clean", *CELLS[0]}
    assert a["cells"] == b["cells"]
    assert any(v > 0 for v in a["cells"]["frost"]["2"].values())  # a model that detects something
    assert (a["backend"], a["seed"]) == (b["backend"], b["seed"]) == ("numpy", SEED)
    assert b["extra"]["corrupted_root"] == str((ws / "tree").resolve())
    assert "corrupted_root" not in a["extra"]
