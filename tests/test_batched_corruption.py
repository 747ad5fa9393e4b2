"""The batched corruption paths of issue 7: ``--corrupt-on batch`` in the OpenMMLab robustness tool
(CorruptDataPreprocessor: the collated batch corrupted on the model's device, at the images'
native resolution, before normalisation) and the classification evaluation's device path.

Fast tests check the pieces against the per-image paths tensor for tensor (with a resize that is
not the identity); the slow ones run the tools end to end on the tiny models and synthetic data
of tests/test_mmdet_integration.py and tests/test_mmseg_integration.py and compare batch mode's
metrics with pipeline mode's (--backend torch).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO_ROOT

CORRUPTIONS = ["contrast", "gaussian_noise"]  # deterministic, and random (keyed per image)
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


# ----------------------------------------------------------------------------- Pillow's bilinear


@pytest.mark.parametrize("size", [(32, 32, 37, 37), (32, 32, 256, 256), (97, 131, 40, 53),
                                  (33, 45, 33, 90), (64, 80, 113, 17)])
def test_pil_resize_bilinear_is_bit_exact(size):
    from PIL import Image

    from robust_transfer.corruptions._torch_pillow import pil_resize_bilinear

    h, w, oh, ow = size
    images = np.random.default_rng(h * w).integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    expected = np.stack([np.asarray(Image.fromarray(i).resize((ow, oh), Image.BILINEAR)) for i in images])
    out = pil_resize_bilinear(torch.from_numpy(images).permute(0, 3, 1, 2), oh, ow)
    assert out.dtype == torch.uint8
    assert np.array_equal(out.permute(0, 2, 3, 1).numpy(), expected)


# ----------------------------------------------------------------------------- classification


def _per_image_tensors(images, keys, corruption, seed, input_size):
    from robust_transfer.classification.data import ArrayImageDataset, test_transform

    dataset = ArrayImageDataset(images, np.zeros(len(images)), test_transform(input_size), keys=keys,
                                corruption=None if corruption is None else (*corruption, seed, "torch"))
    return torch.stack([dataset[i][0] for i in range(len(dataset))])


@pytest.mark.parametrize("corruption", [None, ("contrast", 3), ("gaussian_noise", 2), ("frost", 1)])
@pytest.mark.parametrize("input_size", [32, 224])
def test_classification_device_batch_equals_the_per_image_path(corruption, input_size):
    """Both resizes of the device path (Pillow on the CPU, the integer torch version used on
    GPUs) give the per-image path's tensors exactly."""
    from robust_transfer.classification.evaluation import corrupted_test_batch

    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    keys = np.array([3, 17, 4, 0, 9])  # test-set indices, as a subset keeps them
    expected = _per_image_tensors(images, keys, corruption, 7, input_size)
    for resize_with in ("pil", "torch"):
        out = corrupted_test_batch(torch.from_numpy(images), keys, corruption, seed=7,
                                   input_size=input_size, resize_with=resize_with)
        assert out.dtype == torch.float32 and out.shape == expected.shape
        assert torch.equal(out, expected), resize_with


# ----------------------------------------------------------------------------- OpenMMLab pieces


@pytest.fixture(scope="module")
def plugins():
    import robust_transfer.openmmlab.corrupt_preprocessor as module
    import robust_transfer.openmmlab.mmdet  # noqa: F401  (Corrupt in mmdet's TRANSFORMS)
    import robust_transfer.openmmlab.mmseg  # noqa: F401
    from mmdet.utils import register_all_modules as register_mmdet
    from mmseg.utils import register_all_modules as register_mmseg

    register_mmdet(init_default_scope=False)
    register_mmseg(init_default_scope=False)
    assert module.REGISTERED == ["mmdet", "mmseg"]
    return module


def _write_images(folder: Path, sizes) -> list[str]:
    """Real photographs (scikit-image) at the given (H, W) sizes, as PNG files."""
    import skimage.data
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]
    paths = []
    for index, (h, w) in enumerate(sizes):
        path = folder / f"img_{index}.png"
        Image.fromarray(photos[index % 3]).resize((w, h), Image.LANCZOS).save(path)
        paths.append(str(path))
    return paths


def _collate(pipeline, paths):
    from mmengine.dataset import Compose, pseudo_collate

    compose = Compose(pipeline)
    return pseudo_collate([compose(dict(img_path=p, img_id=i, sample_idx=i)) for i, p in enumerate(paths)])


FRAMEWORKS = {
    # framework: (inner preprocessor, pack step, resize step, native sizes)
    "mmdet": (dict(type="DetDataPreprocessor", mean=MEAN, std=STD, bgr_to_rgb=True, pad_size_divisor=32),
              "PackDetInputs", dict(type="Resize", scale=(160, 160), keep_ratio=True),  # up 1.25 / 1.33
              [(96, 128), (90, 120), (96, 128)]),
    "mmseg": (dict(type="SegDataPreProcessor", mean=MEAN, std=STD, bgr_to_rgb=True, pad_val=0,
                   seg_pad_val=255),
              "PackSegInputs", dict(type="Resize", scale=(100, 60), keep_ratio=True),  # down 0.625
              [(96, 128), (96, 128)]),
}


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
@pytest.mark.parametrize("corruption", [None, ("contrast", 2), ("gaussian_noise", 3), ("saturate", 5)])
def test_preprocessor_gives_the_pipeline_transform_inputs(plugins, tmp_path, framework, corruption):
    """The model input of batch mode (native images, corrupted by the wrapper, resized as the
    pipeline's Resize would) equals pipeline mode's (Corrupt(backend='torch') after loading,
    then Resize) tensor for tensor, with a real up- or downscale and images of several sizes.
    saturate is colour-dependent: it checks the BGR handling."""
    import importlib

    from mmengine.registry import DefaultScope

    from robust_transfer.openmmlab.pipeline import batch_mode_pipeline, insert_corrupt_transform

    inner, pack, resize, sizes = FRAMEWORKS[framework]
    paths = _write_images(tmp_path, sizes)
    pipeline = [dict(type="LoadImageFromFile"), resize, dict(type=pack)]
    models = importlib.import_module(f"{framework}.registry").MODELS
    with DefaultScope.overwrite_default_scope(framework):
        plain = models.build(inner)
        corrupt_cfg = None if corruption is None else dict(
            type="Corrupt", corruption=corruption[0], severity=corruption[1], seed=3, backend="torch")
        reference = plain(_collate(insert_corrupt_transform(pipeline, corrupt_cfg), paths), False)

        steps, resize_args = batch_mode_pipeline(pipeline)
        assert [s["type"] for s in steps] == ["LoadImageFromFile", "StashNativeImage", "Resize",
                                              "RestoreNativeImage", pack]
        wrapper = models.build(dict(type="CorruptDataPreprocessor", preprocessor=inner, seed=3,
                                    native_inputs=True, resize=resize_args))
        assert type(wrapper).__name__ == f"Corrupt{'Det' if framework == 'mmdet' else 'Seg'}DataPreprocessor"
        assert wrapper.mean.flatten().tolist() == pytest.approx(MEAN)  # inner attributes reachable
        if corruption is not None:
            wrapper.set_corruption(*corruption)
        batch = _collate(steps, paths)
        assert [tuple(t.shape[-2:]) for t in batch["inputs"]] == sizes  # native images delivered
        out = wrapper(batch, False)
    assert torch.equal(out["inputs"], reference["inputs"])
    for ours, theirs in zip(out["data_samples"], reference["data_samples"]):
        assert ours.img_shape == theirs.img_shape and ours.scale_factor == theirs.scale_factor


def test_preprocessor_passes_training_batches_through_and_validates(plugins):
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope("mmdet"):
        inner = FRAMEWORKS["mmdet"][0]
        wrapper = MODELS.build(dict(type="CorruptDataPreprocessor", preprocessor=inner,
                                    corruption="fog", severity=2))
        g = torch.Generator().manual_seed(0)
        inputs = [torch.randint(0, 256, (3, 40, 48), generator=g, dtype=torch.uint8) for _ in range(2)]
        samples = [DetDataSample(metainfo=dict(img_shape=(40, 48), img_path=f"/x/{i}.jpg")) for i in range(2)]
        train = wrapper({"inputs": [t.clone() for t in inputs], "data_samples": samples}, True)
        plain = wrapper.preprocessor({"inputs": [t.clone() for t in inputs], "data_samples": samples}, True)
        assert torch.equal(train["inputs"], plain["inputs"])  # training: untouched
        test = wrapper({"inputs": [t.clone() for t in inputs], "data_samples": samples}, False)
        assert not torch.equal(test["inputs"], plain["inputs"])
        # keyed by the basename of img_path, as the pipeline transform: moving the files changes nothing
        moved = [DetDataSample(metainfo=dict(img_shape=(40, 48), img_path=f"/y/{i}.jpg")) for i in range(2)]
        again = wrapper({"inputs": [t.clone() for t in inputs], "data_samples": moved}, False)
        assert torch.equal(again["inputs"], test["inputs"])
        wrapper.set_corruption(None)
        assert torch.equal(wrapper({"inputs": [t.clone() for t in inputs], "data_samples": samples},
                                   False)["inputs"], plain["inputs"])
        with pytest.raises(ValueError, match="severity must be an integer in 1..5"):
            wrapper.set_corruption("fog", 0)
        with pytest.raises(ValueError, match="unknown corruption 'smog'"):
            wrapper.set_corruption("smog", 1)
        wrapper.set_corruption("fog", 1)
        with pytest.raises(ValueError, match="uint8"):
            wrapper({"inputs": [t.float() for t in inputs], "data_samples": samples}, False)
        with pytest.raises(ValueError, match="channel_order"):
            MODELS.build(dict(type="CorruptDataPreprocessor", preprocessor=inner, channel_order="gbr"))


def test_batch_mode_config_rewrite_and_refusals():
    from mmengine.config import Config

    from robust_transfer.openmmlab.pipeline import batch_mode_pipeline, enable_batch_corruption

    from test_mmseg_integration import TINY_CONFIG as SEG_CONFIG

    cfg = Config.fromfile(SEG_CONFIG)
    inner = dict(cfg.model.data_preprocessor)
    train_pipeline = list(cfg.train_dataloader.dataset.pipeline)
    enable_batch_corruption(cfg, seed=5)
    assert [s["type"] for s in cfg.test_dataloader.dataset.pipeline] == [
        "LoadImageFromFile", "StashNativeImage", "Resize", "LoadAnnotations", "RestoreNativeImage",
        "PackSegInputs"]
    wrapped = cfg.model.data_preprocessor
    assert wrapped["type"] == "CorruptDataPreprocessor" and wrapped["preprocessor"] == inner
    assert wrapped["seed"] == 5 and wrapped["native_inputs"] is True
    assert wrapped["resize"] == {"interpolation": "bilinear", "backend": "cv2"}
    assert list(cfg.train_dataloader.dataset.pipeline) == train_pipeline  # training untouched

    load, pack = dict(type="LoadImageFromFile"), dict(type="PackDetInputs")
    _, resize = batch_mode_pipeline([load, dict(type="Resize", scale=(9, 9), interpolation="nearest",
                                                backend="pillow"), pack])
    assert resize == {"interpolation": "nearest", "backend": "pillow"}
    for bad, message in [([load, dict(type="RandomFlip", prob=0.0), pack], "RandomFlip at index 1"),
                         ([load, dict(type="Resize"), dict(type="Resize"), pack], "Resize at index 2"),
                         ([load, dict(type="Corrupt", corruption="fog"), pack], "already has a Corrupt"),
                         ([load, dict(type="Resize")], "no Pack"),
                         ([dict(type="Resize"), pack], "no image-loading step")]:
        with pytest.raises(ValueError, match=message):
            batch_mode_pipeline(bad)


def test_batch_mode_flags_and_results_identity():
    from robust_transfer.openmmlab.segmentation import SEGMENTATION
    from robust_transfer.openmmlab.corruption_choice import resolve_backend
    from robust_transfer.openmmlab.robustness import build_robustness_parser
    from robust_transfer.results import ResultsError, check_same_evaluation, new_results

    parser = build_robustness_parser("segmentation")
    parse = lambda *a: parser.parse_args(["c.py", "k.pth", *a])  # noqa: E731
    assert resolve_backend(parse()) == "numpy"
    assert resolve_backend(parse("--backend", "torch")) == "torch"
    assert resolve_backend(parse("--corrupt-on", "batch")) == "torch"
    with pytest.raises(ValueError, match="torch backend"):
        resolve_backend(parse("--corrupt-on", "batch", "--backend", "numpy"))
    assert "byte for byte" in parser.format_help().replace("\n", " ").replace("  ", " ")

    with pytest.raises(SystemExit):  # the tool refuses it with a usage message
        from robust_transfer.openmmlab.robustness import robustness_main

        robustness_main(["c.py", "k.pth", "--corrupt-on", "batch", "--backend", "numpy"], SEGMENTATION)
    common = dict(task="segmentation", model="m", metrics=["mIoU"], dataset="d", seed=0)
    with pytest.raises(ResultsError, match="backend: 'torch' != 'torch-batch'"):
        check_same_evaluation(new_results(backend="torch", **common),
                              new_results(backend="torch-batch", **common))


# ----------------------------------------------------------------------------- end to end (slow)


def _tool_cmd(tools: Path, config: Path, checkpoint: Path, out: Path, *extra) -> list:
    return [sys.executable, tools / "test_robustness.py", config, checkpoint, "--out", out,
            "--corruptions", *CORRUPTIONS, "--severities", "0", "2", "--work-dir", out.parent, *extra]


def _run_together(commands: list[list], env: dict, cwd: Path, timeout: int = 300) -> list[str]:
    """Run the commands at once (the tiny models use one thread each); their stdout+stderr."""
    procs = [subprocess.Popen([str(c) for c in cmd], env=env, cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for cmd in commands]
    outputs = [p.communicate(timeout=timeout)[0] for p in procs]
    for cmd, proc, output in zip(commands, procs, outputs):
        assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{output[-5000:]}"
    return outputs


@pytest.fixture(scope="module")
def trained_models(tmp_path_factory):
    """The tiny Mask R-CNN and UperNet of the integration tests, trained 40 iterations at once."""
    import test_mmdet_integration as det
    import test_mmseg_integration as seg
    from robust_transfer.datasets.synthetic_ade20k import write_synthetic_ade20k
    from robust_transfer.datasets.synthetic_coco import write_synthetic_coco

    ws = tmp_path_factory.mktemp("batched_e2e")
    coco = write_synthetic_coco(ws / "coco", num_train=16, num_val=8, image_size=(96, 128))
    ade = write_synthetic_ade20k(ws / "ADEChallengeData2016", num_train=8, num_val=4)
    env = dict(det._env(coco.root), PYTHONPATH=str(REPO_ROOT))
    _run_together([
        [sys.executable, det.TOOLS / "train.py", det.TINY_CONFIG, "--work-dir", ws / "det_train",
         "--cfg-options", "val_cfg=None", "val_dataloader=None", "val_evaluator=None"],
        [sys.executable, seg.TOOLS / "train.py", seg.TINY_CONFIG, "--work-dir", ws / "seg_train",
         *seg._data_options(ade)]], env, ws)
    return dict(ws=ws, env=env, ade=ade, det=det, seg=seg, det_checkpoint=ws / "det_train" / "iter_40.pth",
                seg_checkpoint=ws / "seg_train" / "iter_40.pth")


def _both_modes(m, task: str) -> dict:
    module = m[task]
    tools, config, checkpoint = module.TOOLS, module.TINY_CONFIG, m[f"{task}_checkpoint"]
    extra = [] if task == "det" else module._data_options(m["ade"])
    pipeline_out, batch_out = m["ws"] / f"{task}_pipeline" / "r.pkl", m["ws"] / f"{task}_batch" / "r.pkl"
    logs = _run_together([_tool_cmd(tools, config, checkpoint, pipeline_out, "--backend", "torch", *extra),
                          _tool_cmd(tools, config, checkpoint, batch_out, "--corrupt-on", "batch", *extra)],
                         m["env"], m["ws"])
    return {"pipeline": json.loads(pipeline_out.with_suffix(".json").read_text()),
            "batch": json.loads(batch_out.with_suffix(".json").read_text()), "batch_log": logs[1]}


def _check_same_metrics(runs: dict, metrics: list[str]) -> None:
    pipeline, batch = runs["pipeline"], runs["batch"]
    assert (pipeline["backend"], pipeline["extra"]["corrupt_on"]) == ("torch", "pipeline")
    assert (batch["backend"], batch["extra"]["corrupt_on"]) == ("torch-batch", "batch")
    assert set(batch["cells"]) == {"clean", *CORRUPTIONS}
    assert all(set(batch["cells"][c]) == {"2"} for c in CORRUPTIONS)
    for corruption, by_severity in batch["cells"].items():
        for severity, cell in by_severity.items():
            assert set(metrics) <= set(cell)
            # the same model inputs, byte for byte (CPU): the same metrics exactly
            assert cell == pipeline["cells"][corruption][severity], (corruption, severity)
    primary = metrics[0]
    clean = batch["cells"]["clean"]["0"][primary]
    assert clean > 0 and batch["cells"]["contrast"]["2"][primary] != clean  # it measured something
    log = runs["batch_log"]
    assert log.count("Loads checkpoint") == 1 and "3 cell(s), 3 to evaluate" in log


@pytest.mark.slow
def test_detection_batch_mode_equals_pipeline_mode(trained_models):
    runs = _both_modes(trained_models, "det")
    _check_same_metrics(runs, ["bbox_mAP", "segm_mAP"])
    # the dataset (and its annotations) built once, the dataloader kept: one parse each for
    # the dataset and CocoMetric, as in pipeline mode
    assert runs["batch_log"].count("loading annotations into memory") == 2


@pytest.mark.slow
def test_segmentation_batch_mode_equals_pipeline_mode(trained_models):
    _check_same_metrics(_both_modes(trained_models, "seg"), ["mIoU", "mAcc", "aAcc"])


@pytest.mark.slow
def test_classification_batched_path_gives_the_per_image_accuracy(tmp_path):
    from robust_transfer.classification import TransferConfig, run_transfer
    from robust_transfer.classification.evaluation import evaluate_robustness
    from robust_transfer.classification.training import resolve_device
    from robust_transfer.datasets import load_cifar
    from robust_transfer.datasets.synthetic import write_synthetic_cifar10

    torch.set_num_threads(1)
    root = write_synthetic_cifar10(tmp_path / "cifar", num_train=64, num_test=40)
    config = TransferConfig(arch="resnet_tiny", data=str(root), out_dir=str(tmp_path / "out"),
                            exp_name="run", epochs=1, batch_size=16, input_size=32, workers=0,
                            subset=32, progress=False, eval_corruptions="contrast,gaussian_noise,glass_blur",
                            severities=[2], corruption_backend="torch", eval_subset=30, eval_batch_size=8)
    run_transfer(config)  # trains, then evaluates with the default (batched) path
    test = load_cifar(str(root), "cifar10", train=False)
    device = resolve_device("cpu")
    checkpoint = config.exp_dir / "checkpoint.pt.latest"
    config.results = str(tmp_path / "per_image.json")
    per_image = json.loads(evaluate_robustness(config, checkpoint, test, device, batched=False).read_text())
    batched = json.loads((config.exp_dir / "robustness_onthefly_torch.json").read_text())
    assert batched["extra"]["corrupt_on"] == "device-batch"
    assert per_image["extra"]["corrupt_on"] == "data-loader"
    assert batched["backend"] == per_image["backend"] == "torch"
    assert batched["cells"] == per_image["cells"]
    assert set(batched["cells"]) == {"clean", "contrast", "gaussian_noise", "glass_blur"}
    with pytest.raises(ValueError, match="corruption-backend torch"):
        config.corruption_backend = "numpy"
        evaluate_robustness(config, checkpoint, test, device, batched=True)
