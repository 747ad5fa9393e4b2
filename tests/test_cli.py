import pickle
import subprocess
import sys

import pytest

from robust_transfer.cli import build_parser, main
from robust_transfer.results import new_results, save_results, set_cell


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "robust_transfer.cli", *args], capture_output=True, text=True)


def test_every_command_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"report", "merge", "summary", "export-mmdet", "demo", "list", "corrupt", "corrupt-dir"} <= set(sub.choices)
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.dest != "help":
                assert action.help, f"{name} {action.dest} has no help"


@pytest.mark.parametrize("content", ['{"schema": "robust-transfer/res', '{"schema": "x"}'])
def test_bad_results_file_one_line_error(tmp_path, content):
    path = tmp_path / "r.json"
    path.write_text(content)
    proc = run_cli("summary", str(path))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_merge_and_export(tmp_path, capsys):
    shards = []
    for i, cells in enumerate([[("clean", 0, 0.4), ("fog", 1, 0.3)], [("fog", 2, 0.2)]]):
        r = new_results(task="detection", model="m", metrics=["bbox_mAP"])
        for c, s, v in cells:
            set_cell(r, c, s, {"bbox_mAP": v})
        shards.append(tmp_path / f"s{i}.json")
        save_results(r, shards[-1])
    merged = tmp_path / "merged.json"
    assert main(["merge", *map(str, shards), "-o", str(merged)]) == 0
    assert main(["export-mmdet", str(merged), "-o", str(tmp_path / "r.pkl")]) == 0
    exported = pickle.loads((tmp_path / "r.pkl").read_bytes())
    assert exported == {"fog": {0: {"coco/bbox_mAP": 0.4}, 1: {"coco/bbox_mAP": 0.3}, 2: {"coco/bbox_mAP": 0.2}}}
    assert main(["summary", str(merged), "--aggregate", "weather"]) == 0
    assert "40.0" in capsys.readouterr().out


def test_merge_refusal_is_one_line(tmp_path):
    paths = []
    for seed in (0, 1):
        r = new_results(task="t", model="m", metrics=["x"], seed=seed)
        paths.append(tmp_path / f"{seed}.json")
        save_results(r, paths[-1])
    proc = run_cli("merge", *map(str, paths), "-o", str(tmp_path / "m.json"))
    assert proc.returncode == 2 and "seed" in proc.stderr
    assert not (tmp_path / "m.json").exists()


# ----------------------------------------------------------------------------- bad input, corrupt commands


@pytest.fixture
def photo(tmp_path):
    import numpy as np
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 48, 3), 120, np.uint8)).save(path)
    return path


def _one_line_exit_2(proc, *words):
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert all(word in proc.stderr for word in words), proc.stderr


@pytest.mark.parametrize("content", [b"this is text, not an image\n", b"\x89PNG\r\n\x1a\n truncated"])
def test_corrupt_on_a_file_that_is_not_an_image(tmp_path, content):
    path = tmp_path / "notes.png"
    path.write_bytes(content)
    proc = run_cli("corrupt", str(path), "--corruption", "fog", "-o", str(tmp_path / "out.png"))
    _one_line_exit_2(proc, "not an image")
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("command", ["corrupt", "preview", "corrupt-dir"])
def test_unwritable_output_is_found_before_any_work(tmp_path, photo, command):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out = str(blocker / "sub" / "out.png")
    args = {"corrupt": ["corrupt", str(photo), "--corruption", "fog", "-o", out],
            "preview": ["preview", str(photo), "--corruptions", "fog", "-o", out],
            "corrupt-dir": ["corrupt-dir", str(tmp_path), str(blocker / "out"), "--corruptions", "fog"]}[command]
    proc = run_cli(*args)
    _one_line_exit_2(proc, "a_file", "not a folder")


def test_output_with_an_extension_pillow_cannot_write(tmp_path, photo):
    proc = run_cli("corrupt", str(photo), "--corruption", "fog", "-o", str(tmp_path / "out.txt"))
    _one_line_exit_2(proc, "cannot write .txt")


def test_corrupt_dir_on_a_missing_folder(tmp_path):
    _one_line_exit_2(run_cli("corrupt-dir", str(tmp_path / "nope"), str(tmp_path / "out")), "does not exist")
    assert not (tmp_path / "out").exists()


def test_corrupt_writes_the_image_when_all_is_well(tmp_path, photo):
    assert main(["corrupt", str(photo), "--corruption", "contrast", "-o", str(tmp_path / "d" / "o.png")]) == 0
    assert (tmp_path / "d" / "o.png").stat().st_size > 0
