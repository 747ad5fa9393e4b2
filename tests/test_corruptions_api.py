"""The corruption library's public API: names, groups, validation, seeding, layouts, export, CLI."""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from robust_transfer import corruptions as C
from robust_transfer.corruptions import _helpers
from robust_transfer.corruptions._registry import registered_corruptions

ALL = C.get_corruption_names("all")


def _sha(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


# ----------------------------------------------------------------------------- names and groups


def test_groups_are_the_imagenet_c_lists():
    assert C.get_corruption_names() == C.get_corruption_names("benchmark")
    assert C.get_corruption_names("benchmark") == [
        "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
        "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
        "elastic_transform", "pixelate", "jpeg_compression"]
    assert C.get_corruption_names("holdout") == ["speckle_noise", "gaussian_blur", "spatter",
                                                 "saturate"]
    assert ALL == C.get_corruption_names("benchmark") + C.get_corruption_names("holdout")
    families = [n for g in ("noise", "blur", "weather", "digital") for n in C.get_corruption_names(g)]
    assert families == C.get_corruption_names("benchmark")
    assert C.SEVERITIES == (1, 2, 3, 4, 5)
    assert all(isinstance(v, tuple) for v in C.CORRUPTION_GROUPS.values())
    assert sorted(registered_corruptions()) == sorted(ALL)


def test_unknown_group_lists_allowed_values():
    with pytest.raises(ValueError, match="allowed: benchmark, holdout, all"):
        C.get_corruption_names("common")


@pytest.mark.parametrize("spec, expected", [
    ("noise", ["gaussian_noise", "shot_noise", "impulse_noise"]),
    ("fog", ["fog"]),
    (["fog", "weather", "fog"], ["fog", "snow", "frost", "brightness"]),
    ("noise,speckle_noise", ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"]),
    (None, []),
    ("none", []),
    (["none"], []),
])
def test_resolve_corruptions(spec, expected):
    assert C.resolve_corruptions(spec) == expected


def test_resolve_corruptions_all_and_errors():
    assert C.resolve_corruptions(["all", "benchmark"]) == ALL
    with pytest.raises(ValueError, match="allowed groups: .*allowed corruptions: .*fog"):
        C.resolve_corruptions(["fog", "haze"])


# ----------------------------------------------------------------------------- validation


@pytest.fixture(scope="module")
def small_rgb():
    return np.asarray(Image.fromarray(np.zeros((1, 1, 3), np.uint8)).resize((48, 40))) + \
        np.arange(48, dtype=np.uint8)[None, :, None] * 5


@pytest.mark.parametrize("kwargs, message", [
    ({"corruption_name": "haze"}, "unknown corruption 'haze'; allowed: gaussian_noise"),
    ({"severity": 0}, "severity must be an integer in 1..5"),
    ({"severity": 6}, "severity must be an integer in 1..5"),
    ({"severity": 2.0}, "severity must be an integer"),
    ({"severity": True}, "severity must be an integer"),
    ({"backend": "jax"}, "unknown backend 'jax'; allowed: numpy, torch"),
    ({"key": 1.5}, "key must be None, a str or an int"),
    ({"seed": "0"}, "seed must be an integer"),
])
def test_bad_arguments_raise_value_error(small_rgb, kwargs, message):
    args = {"corruption_name": "fog", "severity": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        C.corrupt(small_rgb, args.pop("corruption_name"), args.pop("severity"), **args)


@pytest.mark.parametrize("shape, dtype, message", [
    ((31, 64, 3), np.uint8, "at least 32x32 pixels, got 31x64"),
    ((64, 20), np.uint8, "at least 32x32 pixels, got 64x20"),
    ((40, 40, 2), np.uint8, "1 \\(grey\\), 3 \\(RGB\\) or 4 \\(RGBA\\) channels, got 2"),
    ((40, 40, 5), np.uint8, "channels, got 5"),
    ((2, 40, 40, 3), np.uint8, "image must have shape"),
    ((40, 40, 3), np.float32, "dtype must be uint8, got float32; convert first"),
    ((40, 40, 3), np.uint16, "dtype must be uint8, got uint16"),
])
def test_bad_images_raise_value_error(shape, dtype, message):
    with pytest.raises(ValueError, match=message):
        C.corrupt(np.zeros(shape, dtype), "contrast", 1)


def test_torch_backend_is_a_backend_of_corrupt(small_rgb):
    out = C.corrupt(small_rgb, "fog", 1, backend="torch")  # tests/test_corruptions_torch.py
    assert out.shape == small_rgb.shape and out.dtype == np.uint8


def test_exact_mode_requires_a_random_state(small_rgb):
    with pytest.raises(ValueError, match="RandomState"):
        C.corrupt_with_rng(small_rgb, "fog", 1, np.random.default_rng(0))


# ----------------------------------------------------------------------------- every corruption


@pytest.mark.parametrize("severity", C.SEVERITIES)
@pytest.mark.parametrize("name", ALL)
def test_every_corruption_and_severity_keeps_shape_and_dtype(astronaut_32, name, severity):
    image = np.asarray(Image.fromarray(astronaut_32).resize((45, 33)))  # odd, tiny, not square
    out = C.corrupt(image, name, severity, seed=1, key="tiny")
    assert out.shape == image.shape and out.dtype == np.uint8
    assert not np.shares_memory(out, image) and out.flags.writeable


@pytest.mark.parametrize("name", ALL)
def test_32x32_grey_and_rgba(astronaut_32, name):
    assert C.corrupt(astronaut_32, name, 5).shape == (32, 32, 3)
    grey = astronaut_32[..., 1]
    replicated = np.repeat(grey[..., None], 3, axis=2)
    expected = C.corrupt(replicated, name, 3, seed=2, key="k")[..., 0]
    # Grey images are corrupted as replicated RGB; the first channel is returned.
    np.testing.assert_array_equal(C.corrupt(grey, name, 3, seed=2, key="k"), expected)
    np.testing.assert_array_equal(C.corrupt(grey[..., None], name, 3, seed=2, key="k"),
                                  expected[..., None])
    alpha = np.arange(32 * 32, dtype=np.uint32).reshape(32, 32, 1).astype(np.uint8)
    rgba = np.concatenate([astronaut_32, alpha], axis=2)
    out = C.corrupt(rgba, name, 3, seed=2, key="k")
    assert out.shape == (32, 32, 4)
    np.testing.assert_array_equal(out[..., 3:], alpha)  # alpha passes through unchanged
    np.testing.assert_array_equal(out[..., :3], C.corrupt(astronaut_32, name, 3, seed=2, key="k"))


def test_accepts_pil_images_and_non_contiguous_arrays(astronaut_128x160):
    flipped = astronaut_128x160[:, ::-1]
    np.testing.assert_array_equal(C.corrupt(Image.fromarray(flipped), "fog", 2),
                                  C.corrupt(np.ascontiguousarray(flipped), "fog", 2))


def test_large_non_square_image_fog_and_frost():
    # Larger than every frost texture and than fog's 256 default: textures are scaled up and the
    # plasma map is the next power of two of the long side.
    image = np.full((700, 1030, 3), 90, np.uint8)
    for name in ("fog", "frost"):
        out = C.corrupt(image, name, 4)
        assert out.shape == image.shape and out.std() > 1


# ----------------------------------------------------------------------------- seeding


def test_same_arguments_same_bytes_and_keys_matter(astronaut_32):
    first = C.corrupt(astronaut_32, "gaussian_noise", 3, seed=5, key="a.png")
    np.testing.assert_array_equal(first, C.corrupt(astronaut_32, "gaussian_noise", 3, seed=5,
                                                   key="a.png"))
    others = [C.corrupt(astronaut_32, "gaussian_noise", 3, seed=6, key="a.png"),
              C.corrupt(astronaut_32, "gaussian_noise", 3, seed=5, key="b.png"),
              C.corrupt(astronaut_32, "gaussian_noise", 3, seed=5, key=None)]
    assert all(not np.array_equal(first, other) for other in others)
    # "1" and 1 are different keys; numpy integers count as ints.
    assert not np.array_equal(C.corrupt(astronaut_32, "gaussian_noise", 3, key="1"),
                              C.corrupt(astronaut_32, "gaussian_noise", 3, key=1))
    np.testing.assert_array_equal(C.corrupt(astronaut_32, "gaussian_noise", 3, key=np.int64(1)),
                                  C.corrupt(astronaut_32, "gaussian_noise", 3, key=1))


def test_streams_differ_per_corruption_and_severity():
    draws = {(name, s): C.corruption_rng(0, "k", name, s).randint(1 << 30)
             for name in ("fog", "snow") for s in (1, 2)}
    assert len(set(draws.values())) == 4


def test_seed_scheme_is_frozen():
    # Guards the published streams: changing the derivation would silently change every
    # corrupted dataset. (RandomState streams are frozen by numpy's compatibility policy.)
    rng = C.corruption_rng(0, "val/0001.JPEG", "gaussian_noise", 3)
    assert rng.randint(0, 1 << 30, size=3).tolist() == GOLDEN_DRAWS


GOLDEN_DRAWS = [536126389, 228484298, 340509053]


def test_global_numpy_random_state_is_neither_read_nor_changed(astronaut_32):
    np.random.seed(1234)
    before = np.random.get_state()
    outputs = [C.corrupt(astronaut_32, name, 3, seed=0, key="x") for name in ALL]
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]
    np.random.seed(999)  # a different global state must not change any result
    for name, out in zip(ALL, outputs):
        np.testing.assert_array_equal(out, C.corrupt(astronaut_32, name, 3, seed=0, key="x"))


_HASH_SCRIPT = """
import hashlib, json, sys
import numpy as np
from robust_transfer.corruptions import corrupt
image = (np.arange(40 * 48 * 3) % 251).astype(np.uint8).reshape(40, 48, 3)
names = json.loads(sys.argv[1])
print(json.dumps({n: hashlib.sha256(corrupt(image, n, 4, seed=3, key='img').tobytes()).hexdigest()
                  for n in names}))
"""


def test_same_bytes_across_processes():
    names = ["gaussian_noise", "impulse_noise", "glass_blur", "snow", "frost", "fog", "spatter",
             "elastic_transform", "motion_blur"]
    runs = [subprocess.run([sys.executable, "-c", _HASH_SCRIPT, json.dumps(names)],
                           capture_output=True, text=True, check=True) for _ in range(2)]
    hashes = [json.loads(run.stdout) for run in runs]
    image = (np.arange(40 * 48 * 3) % 251).astype(np.uint8).reshape(40, 48, 3)
    here = {n: _sha(C.corrupt(image, n, 4, seed=3, key="img")) for n in names}
    assert hashes[0] == hashes[1] == here


# ----------------------------------------------------------------------------- frost textures


def test_missing_frost_textures_name_the_package(monkeypatch, astronaut_32):
    monkeypatch.setattr(_helpers.importlib.util, "find_spec", lambda name: None)
    _helpers.load_frost_texture.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="'imagecorruptions' package"):
            C.corrupt(astronaut_32, "frost", 1)
    finally:
        _helpers.load_frost_texture.cache_clear()


def test_frost_textures_are_read_from_the_installed_package():
    for index, name in enumerate(_helpers.FROST_TEXTURE_FILES):
        texture = _helpers.load_frost_texture(index)
        assert texture.ndim == 3 and texture.shape[2] == 3 and min(texture.shape[:2]) > 300


# ----------------------------------------------------------------------------- export, preview, CLI


def _make_image_folder(root):
    (root / "sub").mkdir(parents=True)
    rng = np.random.RandomState(0)
    Image.fromarray(rng.randint(0, 255, (40, 50, 3), dtype=np.uint8)).save(root / "a.png")
    Image.fromarray(rng.randint(0, 255, (36, 44, 3), dtype=np.uint8)).save(root / "sub" / "b.jpg")
    Image.fromarray(rng.randint(0, 255, (33, 35), dtype=np.uint8)).save(root / "sub" / "c.png")
    (root / "notes.txt").write_text("not an image")


def test_corrupt_directory_layout_manifest_and_resume(tmp_path):
    from robust_transfer.corruptions.export import corrupt_directory

    _make_image_folder(tmp_path / "in")
    out = tmp_path / "out"
    summary = corrupt_directory(tmp_path / "in", out, ["fog", "contrast"], [1, 3], seed=4,
                                progress=False)
    assert summary["written"] == 12 and summary["skipped"] == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["files"]) == 12 and manifest["seed"] == 4
    for relative, checksum in manifest["files"].items():
        assert hashlib.sha256((out / relative).read_bytes()).hexdigest() == checksum
    # PNG outputs are lossless and keyed by the file name (as the Corrupt transform keys them).
    clean = np.asarray(Image.open(tmp_path / "in" / "sub" / "c.png"))
    np.testing.assert_array_equal(np.asarray(Image.open(out / "fog" / "3" / "sub" / "c.png")),
                                  C.corrupt(clean, "fog", 3, seed=4, key="c.png"))
    assert Image.open(out / "contrast" / "1" / "sub" / "b.jpg").format == "JPEG"
    assert not list(out.rglob("*.tmp"))

    # Resume: nothing to do; then a damaged output is detected and rewritten.
    assert corrupt_directory(tmp_path / "in", out, ["fog", "contrast"], [1, 3], seed=4,
                             progress=False)["skipped"] == 12
    (out / "fog" / "1" / "a.png").write_bytes(b"broken")
    again = corrupt_directory(tmp_path / "in", out, ["fog", "contrast"], [1, 3], seed=4,
                              progress=False)
    assert (again["written"], again["skipped"]) == (1, 11)


def test_corrupt_directory_rejects_bad_input(tmp_path):
    from robust_transfer.corruptions.export import corrupt_directory

    with pytest.raises(ValueError, match="does not exist"):
        corrupt_directory(tmp_path / "missing", tmp_path / "out", "fog", [1], progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        corrupt_directory(tmp_path / "empty", tmp_path / "out", "fog", [1], progress=False)
    _make_image_folder(tmp_path / "in")
    with pytest.raises(ValueError, match="severities"):
        corrupt_directory(tmp_path / "in", tmp_path / "out", "fog", [7], progress=False)


def test_preview_grid(tmp_path, astronaut_32):
    from robust_transfer.corruptions.preview import make_preview_grid

    grid = make_preview_grid(astronaut_32, ["fog", "noise"], [1, 5], tmp_path / "p.png")
    assert (tmp_path / "p.png").is_file()
    assert grid.size[0] > 3 * 32 and grid.size[1] > 4 * 32  # 4 rows x (clean + 2 severities)
    wrapped = make_preview_grid(astronaut_32, "all", [3])
    assert wrapped.size[1] > 4 * 32  # 20 tiles wrapped 5 per row


def _cli():
    from robust_transfer.cli_corrupt import add_corruption_commands

    parser = argparse.ArgumentParser()
    add_corruption_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def _run_cli(argv) -> int:
    args = _cli().parse_args([str(a) for a in argv])
    return args.func(args)


def test_cli_commands(tmp_path, capsys, astronaut_32):
    assert _run_cli(["list"]) == 0
    assert "holdout (4): speckle_noise gaussian_blur spatter saturate" in capsys.readouterr().out

    Image.fromarray(astronaut_32).save(tmp_path / "in.png")
    assert _run_cli(["corrupt", tmp_path / "in.png", "--corruption", "snow", "--severity", "2",
                     "--seed", "7", "--key", "k", "-o", tmp_path / "o" / "out.png"]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o" / "out.png")),
                                  C.corrupt(astronaut_32, "snow", 2, seed=7, key="k"))

    _make_image_folder(tmp_path / "dir")
    assert _run_cli(["corrupt-dir", tmp_path / "dir", tmp_path / "cdir", "--corruptions", "noise",
                     "fog", "--severities", "2", "--no-progress"]) == 0
    assert (tmp_path / "cdir" / "shot_noise" / "2" / "sub" / "b.jpg").is_file()

    assert _run_cli(["preview", tmp_path / "in.png", "--corruptions", "blur", "--severities", "1",
                     "5", "-o", tmp_path / "prev.png"]) == 0
    assert (tmp_path / "prev.png").is_file()

    with pytest.raises(ValueError, match="unknown corruption 'haze'"):
        _run_cli(["corrupt", tmp_path / "in.png", "--corruption", "haze", "-o", tmp_path / "x.png"])


def test_cli_every_option_has_help():
    parser = _cli()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"{name}: {action.dest} has no help"
