"""Classification transfer: robust-models-transfer's command line on synthetic CIFAR-10 batches
and a synthetic CIFAR-10-C folder (both in the real on-disk formats), with tiny networks."""
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from robust_transfer.backbones import SUPPORTED_FORMATS
from robust_transfer.classification import TransferConfig, run_transfer
from robust_transfer.classification import data as classification_data
from robust_transfer.classification.freeze import apply_freeze_level, frozen_prefixes
from robust_transfer.classification.models import (NORMALIZATION_STATS, build_transfer_model,
                                                   create_model, list_archs, replace_head)
from robust_transfer.datasets import DatasetNotFoundError, load_cifar, load_cifar_c
from robust_transfer.datasets.synthetic import (write_synthetic_cifar10, write_synthetic_cifar10c,
                                                write_synthetic_cifar100)

from conftest import REPO_ROOT

MAIN = REPO_ROOT / "robust-models-transfer" / "src" / "main.py"
CORRUPTIONS = ["gaussian_noise", "contrast"]
NUM_TEST = 40


def load_main_module():
    spec = importlib.util.spec_from_file_location("rmt_main", MAIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    return write_synthetic_cifar10(tmp_path_factory.mktemp("cifar"), num_train=64, num_test=NUM_TEST)


@pytest.fixture(scope="module")
def cifar_c_dir(tmp_path_factory):
    return write_synthetic_cifar10c(tmp_path_factory.mktemp("cifar10c"), CORRUPTIONS, NUM_TEST, seed=0)


@pytest.fixture(scope="module")
def imagenet_checkpoint(tmp_path_factory):
    """A robustness-library .ckpt (the L2-robust models' layout) of resnet_tiny, and its weights."""
    torch.manual_seed(123)
    source = create_model("resnet_tiny", 1000).state_dict()
    inner = {**{f"module.model.{k}": v for k, v in source.items()},
             **{f"module.attacker.model.{k}": v for k, v in source.items()},
             "module.normalizer.new_mean": torch.zeros(3, 1, 1),
             "module.normalizer.new_std": torch.ones(3, 1, 1)}
    path = tmp_path_factory.mktemp("imagenet") / "resnet_tiny_l2_eps3.ckpt"
    torch.save({"model": inner, "optimizer": {}, "schedule": None, "epoch": 90}, path)
    return path, source


def tiny_config(cifar_root, out_dir, **overrides):
    settings = dict(arch="resnet_tiny", data=str(cifar_root), out_dir=str(out_dir), exp_name="run",
                    epochs=1, batch_size=16, input_size=32, workers=0, subset=32, progress=False)
    settings.update(overrides)
    return TransferConfig(**settings)


def initial_head(model_path, seed=0):
    """The head a run with ``seed`` starts from (the runner seeds torch before building)."""
    torch.manual_seed(seed)
    mean, std = NORMALIZATION_STATS["cifar10"]
    model, _ = build_transfer_model("resnet_tiny", 10, model_path=model_path, mean=mean, std=std)
    return {k: v.clone() for k, v in model.model.fc.state_dict().items()}


def run_main(*args, cwd):
    return subprocess.run([sys.executable, str(MAIN), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


# ----------------------------------------------------------------------------- data


def test_cifar_reader_reads_the_release_layout(cifar_root):
    train, test = load_cifar(cifar_root, train=True), load_cifar(cifar_root, train=False)
    assert train.images.shape == (64, 32, 32, 3) and train.images.dtype == np.uint8
    assert test.labels.shape == (NUM_TEST,) and set(np.unique(train.labels)) == set(range(10))
    assert test.classes[0] == "airplane"
    # the inner folder works as well
    assert np.array_equal(load_cifar(cifar_root / "cifar-10-batches-py", train=False).images, test.images)


def test_cifar100_reader(tmp_path):
    write_synthetic_cifar100(tmp_path, num_train=20, num_test=10)
    test = load_cifar(tmp_path, "cifar100", train=False)
    assert test.images.shape == (10, 32, 32, 3) and test.labels.max() < 100


def test_missing_dataset_names_layout_and_source(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_cifar(tmp_path, train=False)
    message = str(info.value)
    assert "cifar-10-batches-py" in message and "data_batch_1" in message
    assert "cifar-10-python.tar.gz" in message


def test_cifar_c_reader_slices_severities(cifar_c_dir, cifar_root):
    full = np.load(cifar_c_dir / "contrast.npy")
    assert full.shape == (5 * NUM_TEST, 32, 32, 3)
    severity2 = load_cifar_c(cifar_c_dir, "contrast", 2)
    assert np.array_equal(severity2.images, full[NUM_TEST:2 * NUM_TEST])
    assert np.array_equal(severity2.labels, load_cifar(cifar_root, train=False).labels)
    with pytest.raises(DatasetNotFoundError, match="Available here: contrast, gaussian_noise"):
        load_cifar_c(cifar_c_dir, "fog", 1)
    with pytest.raises(ValueError, match="1..5"):
        load_cifar_c(cifar_c_dir, "contrast", 6)


def test_synthetic_data_is_deterministic(tmp_path):
    write_synthetic_cifar10(tmp_path / "a", num_train=10, num_test=5, seed=3)
    write_synthetic_cifar10(tmp_path / "b", num_train=30, num_test=5, seed=3)
    a, b = load_cifar(tmp_path / "a", train=False), load_cifar(tmp_path / "b", train=False)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)


def test_transforms_and_subset():
    picture = Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8))
    data = classification_data
    assert data.train_transform(48)(picture).shape == (3, 48, 48)
    assert data.test_transform()(picture).shape == (3, 224, 224)  # Resize(256) + CenterCrop(224)
    assert np.array_equal(data.select_subset(100, 10, 0), data.select_subset(100, 10, 0))
    assert len(set(data.select_subset(100, 10, 0))) == 10
    with pytest.raises(ValueError, match="larger than the training set"):
        data.select_subset(5, 10, 0)


# ----------------------------------------------------------------------------- models


@pytest.mark.parametrize("level, frozen", [
    (-1, []), (1, ["conv1", "bn1", "layer1"]), (4, ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"])])
def test_resnet_freeze_levels(level, frozen):
    net = create_model("resnet_tiny", 10)
    trainable = apply_freeze_level(net, "resnet_tiny", level)
    for name, parameter in net.named_parameters():
        assert parameter.requires_grad == (name.split(".")[0] not in frozen), name
    if level == 4:
        assert trainable == ["fc.weight", "fc.bias"]


def test_swin_freeze_levels():
    net = create_model("swin_tiny_test", 10)
    assert apply_freeze_level(net, "swin_tiny_test", 4) == ["head.weight", "head.bias"]
    assert frozen_prefixes("swin_t", 1) == ["features.0", "features.1"]
    with pytest.raises(ValueError, match="allowed: -1, 1, 2, 3, 4"):
        frozen_prefixes("resnet50", 0)


def test_additional_hidden_head():
    net = create_model("resnet_tiny", 1000)
    head = replace_head(net, "resnet_tiny", 10, additional_hidden=2)
    assert [type(m).__name__ for m in head] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_cli_lists_match_the_library():
    main = load_main_module()
    assert list(main.ARCHS) == list_archs()
    parser = main.build_parser()
    model_format = next(a for a in parser._actions if a.dest == "model_format")
    assert list(model_format.choices) == list(SUPPORTED_FORMATS)
    for action in parser._actions:
        assert action.help, f"{action.dest} has no help"
    text = parser.format_help()
    for flag in ("--arch", "--dataset", "--data", "--out-dir", "--exp-name", "--epochs", "--lr",
                 "--step-lr", "--step-lr-gamma", "--batch-size", "--weight-decay", "--momentum",
                 "--workers", "--model-path", "--resume", "--freeze-level", "--subset",
                 "--additional-hidden", "--adv-train", "--seed", "--eval-only",
                 "--eval-corruptions", "--severities", "--cifar10c-dir", "--freeze-bn-stats"):
        assert flag in text


def test_cli_refuses_adversarial_training_and_missing_data(tmp_path, capsys):
    main = load_main_module()
    base = ["--out-dir", str(tmp_path), "--exp-name", "x", "--data", str(tmp_path / "nothing")]
    assert main.main([*base, "--adv-train", "1"]) == 2
    assert "--adv-train 1" in capsys.readouterr().err
    assert main.main(base) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cifar-10-batches-py" in error and "Traceback" not in error
    config = main.config_from_args(main.build_parser().parse_args([*base, "--severities", "1,3", "5"]))
    assert config.severities == [1, 3, 5]


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_main_fixed_feature_then_both_corruption_modes_and_report(
        tmp_path, cifar_root, cifar_c_dir, imagenet_checkpoint):
    model_path, source = imagenet_checkpoint
    common = ["--arch", "resnet_tiny", "--dataset", "cifar10", "--data", cifar_root,
              "--out-dir", tmp_path / "out", "--exp-name", "ff", "--batch-size", 16,
              "--input-size", 32, "--workers", 0, "--no-tqdm", 1, "--model-path", model_path,
              "--freeze-level", 4, "--eval-corruptions", ",".join(CORRUPTIONS), "--severities", "1", "2"]
    proc = run_main(*common, "--epochs", 1, "--lr", 0.01, "--step-lr", 30, "--weight-decay", 5e-4,
                    "--subset", 48, "--adv-train", 0, "--cifar10c-dir", cifar_c_dir, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    exp = tmp_path / "out" / "ff"
    checkpoint = torch.load(exp / "checkpoint.pt.latest", weights_only=True)
    trained = checkpoint["model"]
    assert checkpoint["epoch"] == 1 and (exp / "checkpoint.pt.best").exists()
    # exactly the head changed: every backbone parameter is bit-identical to the ImageNet one
    for name, value in source.items():
        if name.startswith("fc."):
            continue
        if "running" in name or "num_batches" in name:
            continue
        assert torch.equal(trained[f"model.{name}"], value), name
    head = initial_head(model_path)
    assert all(not torch.equal(trained[f"model.fc.{k}"], v) for k, v in head.items())
    # robust-models-transfer's BatchNorm behaviour: frozen layers still update running stats
    assert not torch.equal(trained["model.bn1.running_mean"], source["bn1.running_mean"])
    rows = json.loads((exp / "log.json").read_text())
    assert [r["epoch"] for r in rows] == [1] and rows[0]["test_top1"] is not None
    assert (exp / "log.csv").read_text().startswith("epoch,lr,train_loss,train_top1,test_loss,test_top1")

    files = json.loads((exp / "robustness_cifar10-c.json").read_text())
    assert files["task"] == "classification" and files["transfer_mode"] == "fixed-feature"
    assert files["backbone"] == "resnet_tiny_l2_eps3" and files["extra"]["corruption_source"] == "cifar-c"
    assert set(files["cells"]) == {"clean", *CORRUPTIONS}
    assert all(set(files["cells"][c]) == {"1", "2"} for c in CORRUPTIONS)

    proc = run_main(*common, "--eval-only", 1, cwd=tmp_path)  # on the fly, our library
    assert proc.returncode == 0, proc.stderr
    on_the_fly = json.loads((exp / "robustness_onthefly_numpy.json").read_text())
    assert on_the_fly["extra"]["corruption_parameters"].startswith("ImageNet-C")
    # the synthetic CIFAR-10-C was written with the same seeds and keys: the modes agree
    assert on_the_fly["cells"] == files["cells"]

    report = subprocess.run([sys.executable, "-m", "robust_transfer.cli", "report",
                             exp / "robustness_cifar10-c.json", exp / "robustness_onthefly_numpy.json",
                             "--out", tmp_path / "report"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    assert "resnet_tiny_l2_eps3" in report.stdout and (tmp_path / "report" / "summary.md").exists()


@pytest.mark.slow
def test_main_full_network_trains_every_parameter(tmp_path, cifar_root, imagenet_checkpoint):
    model_path, source = imagenet_checkpoint
    proc = run_main("--arch", "resnet_tiny", "--data", cifar_root, "--out-dir", tmp_path,
                    "--exp-name", "full", "--epochs", 1, "--batch-size", 16, "--input-size", 32,
                    "--workers", 0, "--subset", 32, "--no-tqdm", 1, "--model-path", model_path,
                    "--freeze-level", -1, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    trained = torch.load(tmp_path / "full" / "checkpoint.pt.latest", weights_only=True)["model"]
    net = create_model("resnet_tiny", 10)
    for name, _ in net.named_parameters():
        if not name.startswith("fc."):
            assert not torch.equal(trained[f"model.{name}"], source[name]), name
    assert not (tmp_path / "full" / "robustness_onthefly_numpy.json").exists()  # not asked for


def test_freeze_bn_stats_keeps_the_backbone_bit_identical(tmp_path, cifar_root, imagenet_checkpoint):
    model_path, source = imagenet_checkpoint
    config = tiny_config(cifar_root, tmp_path, model_path=str(model_path), freeze_level=4,
                         freeze_bn_stats=True)
    run_transfer(config)
    trained = torch.load(config.exp_dir / "checkpoint.pt.latest", weights_only=True)["model"]
    for name, value in source.items():
        if not name.startswith("fc."):
            assert torch.equal(trained[f"model.{name}"], value), name


def test_resume_continues_from_the_last_epoch_exactly(tmp_path, cifar_root):
    straight = tiny_config(cifar_root, tmp_path, exp_name="straight", epochs=2, step_lr=1)
    run_transfer(straight)
    first = tiny_config(cifar_root, tmp_path, exp_name="resumed", epochs=1, step_lr=1)
    run_transfer(first)  # as if killed after epoch 1
    with pytest.raises(ValueError, match="pass --resume"):
        run_transfer(first)
    resumed = tiny_config(cifar_root, tmp_path, exp_name="resumed", epochs=2, step_lr=1, resume=True)
    run_transfer(resumed)
    a = torch.load(straight.exp_dir / "checkpoint.pt.latest", weights_only=True)
    b = torch.load(resumed.exp_dir / "checkpoint.pt.latest", weights_only=True)
    assert b["epoch"] == 2 and [r["epoch"] for r in b["log"]] == [1, 2]
    assert [r["lr"] for r in b["log"]] == pytest.approx([0.01, 0.001])  # step LR survived resume
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    with pytest.raises(ValueError, match="lr: 0.01 in the checkpoint, 0.1 now"):
        run_transfer(tiny_config(cifar_root, tmp_path, exp_name="resumed", epochs=3, step_lr=1,
                                 lr=0.1, resume=True))


def test_swin_from_official_layout_fixed_feature(tmp_path, cifar_root):
    from test_checkpoints import to_microsoft_swin

    torch.manual_seed(7)
    source = create_model("swin_tiny_test", 1000).state_dict()
    model_path = tmp_path / "swin_tiny_patch4_window2.pth"
    torch.save({"model": to_microsoft_swin(source, 2)}, model_path)
    config = tiny_config(cifar_root, tmp_path, arch="swin_tiny_test", model_path=str(model_path),
                         freeze_level=4, subset=16, eval_corruptions="gaussian_noise",
                         severities=[1], eval_subset=8)
    outcome = run_transfer(config)
    trained = torch.load(outcome["checkpoint"], weights_only=True)["model"]
    for name, value in source.items():
        if not name.startswith("head."):
            assert torch.equal(trained[f"model.{name}"], value), name
    results = json.loads(outcome["results"].read_text())
    assert results["extra"]["test_images"] == 8 and "gaussian_noise" in results["cells"]
