"""PRIME augmentation (robust_transfer.augment): the module, its primitives' statistics, the
mmengine data preprocessor (mmdet and mmseg), the paper configs, a train step per task, and the
preview command."""
from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from robust_transfer.augment import IMAGENET_PRESET, PRIME, TRANSFER_DEFAULTS, apply_prime_0_255
from robust_transfer.augment.params import validate_params
from robust_transfer.augment._sampling import make_generator
from robust_transfer.augment.color import apply_color_curves, random_smooth_color, sample_color_params
from robust_transfer.augment.diffeo import apply_displacement, random_diffeomorphism, sample_displacement
from robust_transfer.augment.filtering import apply_filters, random_filter, sample_filter_kernels

from conftest import REPO_ROOT

MMDET_CONFIGS = REPO_ROOT / "mmdetection" / "configs"
MMSEG_CONFIGS = REPO_ROOT / "mmsegmentation" / "configs"


def images(n=4, h=32, w=40, seed=0, dtype=torch.float32):
    """Smooth-ish random images in [0, 1] (a gradient plus noise)."""
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0.1, 0.9, w).view(1, 1, 1, w)
    return (0.7 * ramp + 0.3 * torch.rand((n, 3, h, w), generator=g)).clamp(0, 1).to(dtype)


# ----------------------------------------------------------------------------- the module


@pytest.mark.parametrize("preset", ["transfer", "imagenet"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_shape_dtype_device_and_range_are_preserved(preset, dtype):
    prime = PRIME.from_config({"preset": preset}, seed=1)
    x = images(dtype=dtype)
    out = prime(x)
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert not torch.equal(out, x)
    assert torch.equal(x, images(dtype=dtype))  # the input is not modified


def test_defaults_are_the_transfer_experiments_and_the_imagenet_preset():
    assert PRIME().config() == {"enabled": True, **TRANSFER_DEFAULTS}
    d = TRANSFER_DEFAULTS
    assert (d["color_cut"], d["color_temperature"], d["color_bandwidth"]) == (500, 0.05, 20)
    assert (d["filter_kernel_size"], d["filter_sigma"]) == (3, 4.0)
    assert (d["width"], d["depth"], d["diffeo"]) == (3, 1, False)
    assert PRIME().primitives == ["color", "filter"]
    imagenet = PRIME.imagenet_preset(seed=0)
    assert imagenet.primitives == ["color", "filter", "diffeo"]
    assert imagenet.params["depth"] == 3 and imagenet.config() == {"enabled": True, **IMAGENET_PRESET}
    assert PRIME.imagenet_preset(width=2).params["width"] == 2


def test_same_seed_same_batch_and_every_image_draws_its_own():
    x = images(n=6)
    a = PRIME(seed=3)(x)
    assert torch.equal(a, PRIME(seed=3)(x))
    assert not torch.equal(a, PRIME(seed=4)(x))
    # a generator passed to the call, and the module's own generator advancing between calls
    assert torch.equal(PRIME()(x, torch.Generator().manual_seed(3)), a)
    prime = PRIME(seed=3)
    assert not torch.equal(prime(x), prime(x))
    # identical images in one batch get different augmentations
    same = x[:1].expand(4, -1, -1, -1).contiguous()
    out = PRIME(seed=0)(same)
    assert all(not torch.equal(out[0], out[i]) for i in range(1, 4))
    # mmengine runs data preprocessors inside the AMP context: PRIME ignores autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(PRIME(seed=3)(x), a)
    # global random state is neither used nor changed
    torch.manual_seed(123)
    before = torch.get_rng_state()
    PRIME(seed=3)(x)
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("kwargs", [dict(width=0), dict(enabled=False),
                                    dict(width=0, color=False, filter=False)])
def test_width_zero_or_disabled_is_the_identity(kwargs):
    prime = PRIME(**kwargs)
    x = images()
    assert prime.is_identity and torch.equal(prime(x), x)
    x8 = (x * 255).round().to(torch.uint8)
    assert torch.equal(apply_prime_0_255(prime, x8), x8)


def test_0_255_helper_keeps_dtype_and_scale():
    x = images()
    x8 = (x * 255).round().to(torch.uint8)
    out8 = apply_prime_0_255(PRIME(seed=0), x8, torch.Generator().manual_seed(0))
    assert out8.dtype == torch.uint8 and out8.shape == x8.shape
    out_f = apply_prime_0_255(PRIME(seed=0), x8.float(), torch.Generator().manual_seed(0))
    assert out_f.dtype == torch.float32 and 0 <= float(out_f.min()) and float(out_f.max()) <= 255
    assert (out_f.round() - out8.float()).abs().max() <= 1


def test_bad_input_and_settings_raise_clear_errors():
    prime = PRIME()
    with pytest.raises(ValueError, match="floating-point"):
        prime(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        prime(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match=r"in \[0, 1\].*apply_prime_0_255"):
        prime(torch.full((1, 3, 8, 8), 255.0))
    for bad, message in [(dict(filter_kernel_size=4), "odd"), (dict(width=-1), "width"),
                         (dict(colour_cut=3), "unknown PRIME parameter.*allowed"),
                         (dict(color_temperature=-0.1), "color_temperature"),
                         (dict(filter_padding="mirror"), "filter_padding"),
                         (dict(diffeo_cut_min=1), "diffeo_cut_min"),
                         (dict(color=False, filter=False), "at least one primitive"),
                         (dict(preset="cifar"), "unknown PRIME preset")]:
        with pytest.raises(ValueError, match=message):
            PRIME(**bad) if "preset" not in bad else PRIME.from_config(bad)


def test_mixing_weights_follow_their_distributions():
    from robust_transfer.augment._sampling import beta as _beta, dirichlet as _dirichlet, gamma as _gamma

    g = make_generator(0)
    for alpha in (0.5, 2.0):
        sample = _gamma(g, alpha, (20000,))
        assert abs(float(sample.mean()) - alpha) < 0.05 * alpha + 0.02 and float(sample.min()) > 0
    weights = _dirichlet(g, 0.5, 5000, 3)
    assert torch.allclose(weights.sum(1), torch.ones(5000, dtype=torch.float64))
    assert torch.allclose(weights.mean(0), torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.02)
    beta = _beta(g, 2.0, 20000)  # Beta(2, 2): mean 1/2, variance 1/20
    assert abs(float(beta.mean()) - 0.5) < 0.01 and abs(float(beta.var()) - 0.05) < 0.005
    out = PRIME(dirichlet_alpha=0.5, mix_alpha=2.0, seed=0)(images())
    assert out.shape == (4, 3, 32, 40)


# ----------------------------------------------------------------------------- primitives


def test_colour_primitive_keeps_the_image_mean_within_a_bound():
    g = make_generator(0)
    x = images(n=64, h=24, w=24, seed=1, dtype=torch.float64)
    out = random_smooth_color(x, g, cut=500, temperature=0.05, bandwidth=20)
    shift = out.mean(dim=(1, 2, 3)) - x.mean(dim=(1, 2, 3))
    # each b_k sin(k pi x) has zero mean over the draws; at most 20 terms of std <= 0.05
    assert float(shift.abs().max()) < 0.05
    assert abs(float(shift.mean())) < 0.01
    assert float((out - x).abs().mean()) > 1e-3  # it does change the colours
    # black and white are fixed points of every curve (sin(k pi 0) = sin(k pi) = 0)
    low, coeffs = sample_color_params(8, 3, g, cut=500, temperature=0.05, bandwidth=20)
    ends = torch.tensor([0.0, 1.0], dtype=torch.float64).view(1, 1, 1, 2).expand(8, 3, 1, 2)
    assert torch.allclose(apply_color_curves(ends.contiguous(), low, coeffs), ends, atol=1e-9)
    # the lookup table is exact on 8-bit levels and close elsewhere
    levels = torch.arange(256, dtype=torch.float64).div(255).view(1, 1, 16, 16).expand(8, 3, 16, 16)
    exact = apply_color_curves(levels, low, coeffs, lut_intervals=None)
    assert torch.allclose(apply_color_curves(levels, low, coeffs), exact, atol=1e-6)
    assert torch.allclose(apply_color_curves(x[:8], low, coeffs),
                          apply_color_curves(x[:8], low, coeffs, lut_intervals=None), atol=2e-3)
    # band: at most `bandwidth` non-zero coefficients per channel
    assert int((coeffs != 0).sum(dim=2).max()) <= 20


def test_filter_keeps_total_intensity():
    g = make_generator(0)
    kernels = sample_filter_kernels(16, 3, g, kernel_size=3, sigma=4.0)
    assert kernels.shape == (16, 1, 3, 3)
    assert torch.allclose(kernels.sum(dim=(-2, -1)), torch.ones(16, 1, dtype=torch.float64))
    x = images(n=16, dtype=torch.float64)
    total = x.sum(dim=(2, 3))
    circular = apply_filters(x, kernels, "circular")
    assert torch.allclose(circular.sum(dim=(2, 3)), total, rtol=1e-10)
    # the default reflect padding differs from circular only in the one-pixel border
    reflect = apply_filters(x, kernels, "reflect")
    assert torch.allclose(reflect[..., 1:-1, 1:-1], circular[..., 1:-1, 1:-1])
    assert float((circular - x).abs().mean()) > 1e-3
    per_channel = sample_filter_kernels(2, 3, g, kernel_size=5, sigma=1.0, per_channel=True)
    assert per_channel.shape == (2, 3, 5, 5) and not torch.equal(per_channel[:, 0], per_channel[:, 1])
    # sigma 0 is the identity filter
    still = random_filter(x, g, kernel_size=3, sigma=0.0)
    assert torch.allclose(still, x)


@pytest.mark.parametrize("temperature", [None, 1.0])
def test_diffeomorphism_displacement_stays_within_its_maximum(temperature):
    g = make_generator(0)
    for bound in (0.02, 0.125):
        field = sample_displacement(32, 40, 56, g, cut=50, cut_min=2, temperature=temperature,
                                    max_displacement=bound)
        assert field.shape == (32, 2, 40, 56)
        peak = field.abs().amax(dim=(1, 2, 3))
        assert float(peak.max()) <= bound + 1e-12
        # zero on the border: the image frame stays in place
        for edge in (field[..., 0, :], field[..., -1, :], field[..., :, 0], field[..., :, -1]):
            assert float(edge.abs().max()) < 1e-9
        if temperature is not None:  # a hot field is rescaled to exactly the bound
            assert torch.allclose(peak, torch.full_like(peak, bound))
    x = images(dtype=torch.float64)
    assert torch.allclose(apply_displacement(x, torch.zeros(4, 2, 32, 40)), x, atol=1e-12)
    moved = random_diffeomorphism(x, g, cut=10, temperature=1.0, max_displacement=0.1)
    assert moved.shape == x.shape and float((moved - x).abs().mean()) > 1e-3


# ----------------------------------------------------------------------------- mmengine preprocessor


@pytest.fixture(scope="module")
def registered():
    import robust_transfer.openmmlab.prime_preprocessor as module

    assert module.REGISTERED == ["mmdet", "mmseg"]
    return module


def _det_batch(sizes=((48, 64), (40, 64), (48, 64)), seed=0):
    from mmdet.structures import DetDataSample

    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8) for h, w in sizes]
    samples = [DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w))) for h, w in sizes]
    return {"inputs": inputs, "data_samples": samples}


def _copy(batch):
    return {"inputs": [t.clone() for t in batch["inputs"]], "data_samples": batch["data_samples"]}


DET_INNER = dict(type="DetDataPreprocessor", mean=[123.675, 116.28, 103.53],
                 std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32)


def test_preprocessor_leaves_test_batches_untouched_and_augments_training_before_padding(registered):
    from mmdet.registry import MODELS
    from mmengine.logging import MessageHub

    wrapper = MODELS.build(dict(type="PRIMEDataPreprocessor", preprocessor=DET_INNER, seed=0))
    assert type(wrapper).__name__ == "PRIMEDetDataPreprocessor" and wrapper.channel_order == "bgr"
    assert wrapper.pad_size_divisor == 32  # attributes of the inner preprocessor are reachable
    inner = wrapper.preprocessor
    batch = _det_batch()
    original = [t.clone() for t in batch["inputs"]]

    test_out = wrapper(_copy(batch), training=False)
    reference = inner(_copy(batch), training=False)
    assert torch.equal(test_out["inputs"], reference["inputs"])

    hub = MessageHub.get_instance("test_prime_preprocessor")
    hub.update_info("iter", 7)
    train_out = wrapper(batch, training=True)
    assert all(torch.equal(a, b) for a, b in zip(batch["inputs"], original))  # inputs not modified
    plain = inner(_copy(batch), training=True)["inputs"]
    assert train_out["inputs"].shape == plain.shape == (3, 3, 64, 64)
    # the image areas differ, the padding (added after PRIME) is the same pad value
    assert not torch.equal(train_out["inputs"][:, :, :40], plain[:, :, :40])
    assert torch.equal(train_out["inputs"][1, :, 40:], plain[1, :, 40:])
    assert torch.equal(train_out["inputs"][:, :, 48:], plain[:, :, 48:])

    # seeded by (seed, rank, iteration): the same iteration repeats, another one differs
    again = MODELS.build(dict(type="PRIMEDataPreprocessor", preprocessor=DET_INNER, seed=0))
    assert torch.equal(again(_copy(batch), training=True)["inputs"], train_out["inputs"])
    hub.update_info("iter", 8)
    assert not torch.equal(again(_copy(batch), training=True)["inputs"], train_out["inputs"])
    other_seed = MODELS.build(dict(type="PRIMEDataPreprocessor", preprocessor=DET_INNER, seed=1))
    hub.update_info("iter", 7)
    assert not torch.equal(other_seed(_copy(batch), training=True)["inputs"], train_out["inputs"])

    # PRIME off (width 0): training batches pass through too
    off = MODELS.build(dict(type="PRIMEDataPreprocessor", preprocessor=DET_INNER, prime=dict(width=0)))
    assert torch.equal(off(_copy(batch), training=True)["inputs"], plain)


def test_preprocessor_augments_in_rgb_order_and_wraps_mmseg(registered):
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData

    inner = dict(type="SegDataPreProcessor", mean=[123.675, 116.28, 103.53],
                 std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0, seg_pad_val=255,
                 size=(64, 64))
    wrapper = MODELS.build(dict(type="PRIMEDataPreprocessor", preprocessor=inner, seed=0))
    assert type(wrapper).__name__ == "PRIMESegDataPreprocessor"
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 256, (3, 48, 56), generator=g, dtype=torch.uint8) for _ in range(2)]
    samples = []
    for _ in inputs:
        sample = SegDataSample(metainfo=dict(img_shape=(48, 56), ori_shape=(48, 56)))
        sample.gt_sem_seg = PixelData(data=torch.zeros(1, 48, 56, dtype=torch.uint8))
        samples.append(sample)
    data = {"inputs": inputs, "data_samples": samples}
    test_out = wrapper({"inputs": [t.clone() for t in inputs], "data_samples": samples}, False)
    assert torch.equal(test_out["inputs"][0], wrapper.preprocessor(
        {"inputs": [t.clone() for t in inputs], "data_samples": samples}, False)["inputs"][0])
    train_out = wrapper(data, True)
    assert train_out["inputs"].shape == (2, 3, 64, 64)
    assert torch.equal(train_out["data_samples"][0].gt_sem_seg.data[:, 48:],
                       torch.full((1, 16, 64), 255, dtype=torch.uint8))
    # channel order: a BGR batch is augmented as RGB, i.e. as PRIME on the flipped batch
    bgr = torch.stack(inputs)
    generator_seed = 5
    through = wrapper.augment_inputs(bgr, torch.Generator().manual_seed(generator_seed))
    direct = apply_prime_0_255(wrapper.prime, bgr.flip(1).float(),
                               torch.Generator().manual_seed(generator_seed)).flip(1)
    assert torch.allclose(through, direct)


def _prime_configs():
    return sorted(MMDET_CONFIGS.glob("prime/*.py")) + sorted(MMSEG_CONFIGS.glob("prime/*.py"))


def test_prime_configs_exist_for_every_backbone_of_the_table():
    names = {p.name for p in _prime_configs()}
    assert names == {
        "mask_rcnn_r50_prime_while_finetune_fpn_2x_lr0.04_coco.py",
        "mask_rcnn_r50_prime_while_finetune_prime_fpn_2x_lr0.04_coco.py",
        "mask_rcnn_r50_prime_while_finetune_deepaug_augmix_fpn_2x_lr0.04_coco.py",
        "mask_rcnn_prime_while_finetune_swin-t-p4-w7_fpn_fp16_ms-crop-2x_coco.py",
        "upernet_r50_512x512_80k_ade20k_prime_while_finetune_regular.py",
        "upernet_r50_512x512_80k_ade20k_prime_while_finetune_prime.py",
        "upernet_r50_512x512_80k_ade20k_prime_while_finetune_deepaug_augmix.py",
        "upernet_swin_tiny_patch4_window7_512x512_80k_ade20k_pretrain_224x224_1K_prime_while_finetune.py",
    }


@pytest.mark.parametrize("path", _prime_configs(), ids=lambda p: p.stem)
def test_prime_config_wraps_its_base_preprocessor(registered, path):
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    cfg = Config.fromfile(str(path))
    task = "mmdet" if "mmdetection" in path.parts else "mmseg"
    assert "robust_transfer.openmmlab.prime_preprocessor" in cfg.custom_imports["imports"]
    assert cfg.transfer["augmentation"] == "prime" and cfg.transfer["mode"] == "full-network"
    dp = cfg.model.data_preprocessor
    assert dp.type == "PRIMEDataPreprocessor" and dict(dp.prime) == {
        k: TRANSFER_DEFAULTS[k] for k in dp.prime}
    assert validate_params(dict(dp.prime)) == TRANSFER_DEFAULTS
    inner_type = "DetDataPreprocessor" if task == "mmdet" else "SegDataPreProcessor"
    assert dp.preprocessor.type == inner_type and dp.preprocessor.bgr_to_rgb is True
    registry = __import__(f"{task}.registry", fromlist=["MODELS"]).MODELS
    with DefaultScope.overwrite_default_scope(task):
        built = registry.build(dp)
    assert type(built.preprocessor).__name__ == inner_type and not built.prime.is_identity


# ----------------------------------------------------------------------------- a train step per task


def _write_config(tmp_path: Path, name: str, base: Path, plugin: str) -> Path:
    """A config inheriting ``base`` whose data preprocessor is wrapped in PRIMEDataPreprocessor,
    the way the configs of configs/prime/ do it."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(f"""
        _base_ = '{base}'
        custom_imports = dict(imports=['robust_transfer.openmmlab.{plugin}',
                                       'robust_transfer.openmmlab.prime_preprocessor'],
                              allow_failed_imports=False)
        model = dict(data_preprocessor=dict(
            _delete_=True, type='PRIMEDataPreprocessor',
            preprocessor={{{{_base_.model.data_preprocessor}}}}, prime=dict(), seed=0))
    """))
    return path


def _train_steps(cfg, scope: str, steps: int = 1) -> list[float]:
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DATASETS, MODELS, DefaultScope, init_default_scope

    init_default_scope(scope)
    with DefaultScope.overwrite_default_scope(scope):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        model.train()
        losses = []
        for step in range(steps):
            batch = pseudo_collate([dataset[i] for i in range(2 * step, 2 * step + 2)])
            log = model.train_step(batch, wrapper)
            losses.append(float(log["loss"].detach()))
    assert type(model.data_preprocessor).__name__ == "PRIMEDataPreprocessor".replace(
        "PRIME", "PRIMEDet" if scope == "mmdet" else "PRIMESeg")
    return losses


def test_detection_train_step_with_prime(registered, tmp_path):
    from mmengine.config import Config

    from robust_transfer.datasets.synthetic_coco import write_synthetic_coco

    import robust_transfer.openmmlab.mmdet  # noqa: F401  (the config's plugin)

    data = write_synthetic_coco(tmp_path / "coco", num_train=2, num_val=1, image_size=(64, 80))
    base = MMDET_CONFIGS / "tests" / "mask-rcnn_r18-tiny_fpn_synthetic-coco.py"
    cfg = Config.fromfile(str(_write_config(tmp_path, "tiny_det_prime.py", base, "mmdet")))
    cfg.train_dataloader.dataset.data_root = str(data.root) + "/"
    for step in cfg.train_dataloader.dataset.pipeline:  # keep the 64x80 images at their size
        if step["type"] == "Resize":
            step["scale"] = (80, 80)
    losses = _train_steps(cfg, "mmdet")
    assert all(np.isfinite(losses))


def test_segmentation_train_step_with_prime(registered, tmp_path):
    from mmengine.config import Config

    from robust_transfer.datasets.synthetic_ade20k import write_synthetic_ade20k

    import robust_transfer.openmmlab.mmseg  # noqa: F401

    root = write_synthetic_ade20k(tmp_path / "ade", num_train=2, num_val=1)
    base = MMSEG_CONFIGS / "tiny" / "upernet_r18-tiny_1xb4-40it_synthetic-ade20k-64x80.py"
    cfg = Config.fromfile(str(_write_config(tmp_path, "tiny_seg_prime.py", base, "mmseg")))
    cfg.train_dataloader.dataset.data_root = str(root)
    losses = _train_steps(cfg, "mmseg")
    assert all(np.isfinite(losses))


def test_classification_train_step_with_prime_on_training_batches_only(tmp_path, monkeypatch):
    from robust_transfer.classification import TransferConfig, run_transfer
    from robust_transfer.datasets.synthetic import write_synthetic_cifar10

    root = write_synthetic_cifar10(tmp_path / "cifar", num_train=16, num_test=8)
    seen = []
    original = PRIME.forward

    def spy(self, batch, generator=None):
        seen.append((tuple(batch.shape), float(batch.min()), float(batch.max())))
        return original(self, batch, generator)

    monkeypatch.setattr(PRIME, "forward", spy)
    config = TransferConfig(arch="resnet_tiny", data=str(root), out_dir=str(tmp_path / "out"),
                            exp_name="prime", epochs=1, batch_size=8, input_size=32, workers=0,
                            progress=False, prime=True, prime_params={"width": 2})
    outcome = run_transfer(config)
    assert outcome["training"]["epoch"] == 1
    # two training batches of 8, each in [0, 1]; the test pass (8 images) never went through PRIME
    assert [s[0] for s in seen] == [(8, 3, 32, 32), (8, 3, 32, 32)]
    assert all(0.0 <= lo and hi <= 1.0 for _, lo, hi in seen)
    checkpoint = torch.load(outcome["training"]["latest"], weights_only=True)
    assert checkpoint["config"]["prime"] is True and checkpoint["config"]["prime_params"] == {"width": 2}


def test_main_py_prime_flags_reach_the_config():
    import importlib.util

    spec = importlib.util.spec_from_file_location("rmt_main_prime",
                                                  REPO_ROOT / "robust-models-transfer/src/main.py")
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    parser = main.build_parser()
    args = parser.parse_args(["--out-dir", "o", "--exp-name", "e", "--prime", "--prime-width", "2",
                              "--prime-color-bandwidth", "none", "--prime-diffeo", "true",
                              "--prime-seed", "5"])
    config = main.config_from_args(args).validate()
    assert config.prime and config.prime_seed == 5
    assert config.prime_params == {"width": 2, "color_bandwidth": None, "diffeo": True}
    assert config.prime_settings["color_bandwidth"] is None and config.prime_settings["depth"] == 1
    plain = main.config_from_args(parser.parse_args(["--out-dir", "o", "--exp-name", "e"]))
    assert not plain.prime and plain.prime_params == {}
    with pytest.raises(ValueError, match="--prime"):
        main.config_from_args(parser.parse_args(["--out-dir", "o", "--exp-name", "e",
                                                 "--prime-width", "2"])).validate()
    with pytest.raises(ValueError, match="odd"):
        main.config_from_args(parser.parse_args(["--out-dir", "o", "--exp-name", "e", "--prime",
                                                 "--prime-filter-kernel-size", "4"])).validate()


# ----------------------------------------------------------------------------- preview command


def test_prime_preview_command_writes_a_grid(tmp_path):
    from PIL import Image

    from robust_transfer.cli_prime import add_prime_commands

    parser = argparse.ArgumentParser()
    add_prime_commands(parser.add_subparsers(dest="command", required=True))
    source = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(source)
    out = tmp_path / "grid" / "prime.png"
    args = parser.parse_args(["prime-preview", str(source), "-o", str(out), "--samples", "5",
                              "--seed", "0", "--columns", "3", "--prime-width", "2"])
    assert args.func(args) == 0
    grid = Image.open(out)
    assert grid.size == (3 * (48 + 4), 2 * (40 + 16 + 4))
    first = np.asarray(grid)
    assert args.func(args) == 0 and np.array_equal(np.asarray(Image.open(out)), first)  # seeded
    bad = parser.parse_args(["prime-preview", str(tmp_path / "missing.png"), "-o", str(out)])
    with pytest.raises(ValueError, match="does not exist"):
        bad.func(bad)
