"""End to end on the installed mmdet 3.3.0, on CPU, with synthetic COCO data.

A tiny Mask R-CNN (mmdetection/configs/tests/) is trained from scratch for a few iterations with
mmdet's runner (tools/train.py); then tools/test_robustness.py evaluates it over 4 corruptions x 2
severities + clean, and is checked against mmdet's own robustness_eval.py and test_robustness.py,
against itself resumed, and against itself under torchrun with 2 processes (gloo).
"""
from __future__ import annotations

import importlib.util
import json
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "mmdetection" / "tools"
TINY_CONFIG = REPO / "mmdetection" / "configs" / "tests" / "mask-rcnn_r18-tiny_fpn_synthetic-coco.py"
CORRUPTIONS = ["gaussian_noise", "brightness", "contrast", "pixelate"]
SEVERITIES = ["0", "1", "2"]
DETERMINISTIC = ["brightness", "contrast", "pixelate"]  # no random draws: comparable with mmdet's tool


def _env(data_root: Path) -> dict:
    # One BLAS/OpenMP thread per process: the test machine's cores are shared, and several
    # threads per process make the tiny model several times slower.
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore",
                SYNTHETIC_COCO_ROOT=str(data_root), PYTHON=sys.executable)


def _run(cmd, env, cwd, timeout=300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Synthetic COCO + the tiny model trained for 40 iterations; (workspace, checkpoint, env)."""
    from robust_transfer.datasets.synthetic_coco import write_synthetic_coco

    ws = tmp_path_factory.mktemp("mmdet_e2e")
    data = write_synthetic_coco(ws / "data", num_train=16, num_val=8, image_size=(96, 128))
    env = _env(data.root)
    _run([sys.executable, TOOLS / "train.py", TINY_CONFIG, "--work-dir", ws / "train",
          "--cfg-options", "val_cfg=None", "val_dataloader=None", "val_evaluator=None"], env, ws)
    checkpoint = ws / "train" / "iter_40.pth"
    assert checkpoint.is_file()
    return ws, checkpoint, env


def _robustness_cmd(ws, checkpoint, out, corruptions, severities, *extra):
    return [sys.executable, TOOLS / "test_robustness.py", TINY_CONFIG, checkpoint, "--out", out,
            "--corruptions", *corruptions, "--severities", *severities,
            "--work-dir", ws / "work_robustness", *extra]


@pytest.fixture(scope="module")
def ours(trained):
    ws, checkpoint, env = trained
    out = ws / "ours" / "robustness.pkl"
    proc = _run(_robustness_cmd(ws, checkpoint, out, CORRUPTIONS, SEVERITIES,
                                "--final-prints", "P", "mPC", "rPC", "--show-dir", ws / "show"),
                env, ws)
    return dict(proc=proc, pkl=out, json=out.with_suffix(".json"), show=ws / "show",
                results=json.loads(out.with_suffix(".json").read_text()))


def test_every_cell_has_bbox_and_segm_ap(ours):
    cells = ours["results"]["cells"]
    assert set(cells) == {"clean", *CORRUPTIONS}
    assert set(cells["clean"]) == {"0"} and all(set(cells[c]) == {"1", "2"} for c in CORRUPTIONS)
    for by_severity in cells.values():
        for metrics in by_severity.values():
            assert {"bbox_mAP", "segm_mAP", "bbox_mAP_50", "segm_mAP_75"} <= set(metrics)
            assert all(isinstance(v, float) for v in metrics.values())
    assert cells["clean"]["0"]["bbox_mAP"] > 0 and cells["clean"]["0"]["segm_mAP"] > 0  # it learned
    r = ours["results"]
    assert (r["task"], r["metrics"], r["seed"], r["backend"]) == ("detection", ["bbox_mAP", "segm_mAP"], 0, "numpy")
    assert len(r["checkpoint_sha256"]) == 64 and r["versions"]["mmdet"] == "3.3.0"


def test_prints_p_mpc_rpc_and_progress(ours):
    out, err = ours["proc"].stdout, ours["proc"].stderr
    for task in ("bbox", "segm"):
        for what in ("Performance on Clean Data [P]", "Mean Performance under Corruption [mPC]",
                     "Relative Performance under Corruption [rPC]"):
            assert f"{what} ({task})" in out
    assert "| bbox_mAP" in out and "| segm_mAP" in out
    assert "9 cell(s), 9 to evaluate" in err
    assert "img/s" in err and "9/9" in err  # progress bar: cells done / total, images per second
    assert err.count("[robustness] pixelate@2: bbox_mAP=") == 1


def test_show_dir_has_a_folder_per_cell(ours):
    folders = sorted(p.name for p in ours["show"].iterdir())
    assert folders == sorted(["clean"] + [f"{c}_{s}" for c in CORRUPTIONS for s in (1, 2)])
    assert all(len(list((ours["show"] / f).glob("*.jpg"))) == 8 for f in folders)


def test_model_and_dataset_built_once(ours):
    text = ours["proc"].stdout + ours["proc"].stderr
    assert text.count("Loads checkpoint") == 1
    # COCO json parsed once by the dataset and once by CocoMetric, not once per cell
    assert text.count("loading annotations into memory") == 2


def _load_robustness_eval():
    path = Path(importlib.util.find_spec("mmdet").origin).parent / ".mim" / "tools" / "analysis_tools" / "robustness_eval.py"
    spec = importlib.util.spec_from_file_location("mmdet_robustness_eval_e2e", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pickle_readable_by_mmdets_robustness_eval(ours, capsys):
    rob = _load_robustness_eval()
    cells = ours["results"]["cells"]
    assert [d.replace(" ", "_") for d in rob.get_distortions_from_file(str(ours["pkl"]))] == CORRUPTIONS
    from robust_transfer.metrics import summarize
    from robust_transfer.results import cells_by_int_severity

    for task in ("bbox", "segm"):
        theirs = rob.get_results(str(ours["pkl"]), dataset="coco", task=task, metric=["mAP"],
                                 prints="all", aggregate="all")
        metric = f"{task}_mAP"
        assert theirs[0, 0, 0] == pytest.approx(cells["clean"]["0"][metric], rel=1e-6)
        for i, corruption in enumerate(CORRUPTIONS):
            for severity in (1, 2):
                assert theirs[i, severity, 0] == pytest.approx(cells[corruption][str(severity)][metric], rel=1e-6)
        ours_summary = summarize(cells_by_int_severity(ours["results"]), metric, CORRUPTIONS, [1, 2])
        # their mPC averages severities 1..5 with zeros for the three not run; over the run ones:
        assert ours_summary.mPC == pytest.approx(theirs[:, 1:3, 0].mean(), rel=1e-5)
        assert ours_summary.P == pytest.approx(theirs[0, 0, 0], rel=1e-6)
    assert "Relative Performance under Corruption [rPC] (segm)" in capsys.readouterr().out


def test_resume_evaluates_nothing(trained, ours):
    ws, checkpoint, env = trained
    before = ours["json"].read_bytes()
    cmd = _robustness_cmd(ws, checkpoint, ours["pkl"], CORRUPTIONS, SEVERITIES)
    refused = subprocess.run([str(c) for c in cmd], env=env, cwd=ws, capture_output=True, text=True)
    assert refused.returncode == 2 and "pass --resume" in refused.stderr
    proc = _run(cmd + ["--resume"], env, ws)
    assert "9 cell(s), 0 to evaluate" in proc.stderr
    assert "Loads checkpoint" not in proc.stdout + proc.stderr  # no runner was even built
    assert ours["json"].read_bytes() == before
    assert "Mean Performance under Corruption [mPC] (bbox)" in proc.stdout


def test_torchrun_two_processes_equal_one(trained, ours):
    ws, checkpoint, env = trained
    out = ws / "dist" / "robustness.pkl"
    env = dict(env, PORT=str(_free_port()))
    cmd = ["bash", TOOLS / "dist_test.sh", TINY_CONFIG, checkpoint, "2", "--robustness",
           "--out", out, "--corruptions", "gaussian_noise", "brightness", "--severities", "0", "1",
           "--work-dir", ws / "work_dist"]
    proc = _run(cmd, env, ws)
    assert "Distributed launcher: pytorch" in proc.stdout + proc.stderr
    assert proc.stdout.count("Aggregated results:") == 1  # rank 0 alone reports and writes
    dist = json.loads(out.with_suffix(".json").read_text())["cells"]
    single = ours["results"]["cells"]
    assert set(dist) == {"clean", "gaussian_noise", "brightness"}
    for corruption, by_severity in dist.items():
        for severity, metrics in by_severity.items():
            assert metrics == single[corruption][severity], (corruption, severity)


def test_same_ap_as_mmdets_own_test_robustness(trained, ours):
    """mmdet's tools/analysis_tools/test_robustness.py (imagecorruptions inside mmdet's own
    Corrupt) and ours agree on every AP for corruptions without random draws."""
    ws, checkpoint, env = trained
    # mmdet's tool sets model.backbone.init_cfg.type (so it needs a dict there) and must run
    # mmdet's own Corrupt, so this config drops our plugin import.
    config = ws / "mmdet_tool_config.py"
    config.write_text(f"_base_ = {str(TINY_CONFIG)!r}\ncustom_imports = dict(imports=[])\n"
                      "model = dict(backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained', "
                      "checkpoint='unused')))\n")
    out = ws / "mmdet_tool" / "m.pkl"
    proc = _run([sys.executable, REPO / "tests" / "_run_mmdet_tool.py", "analysis_tools/test_robustness.py",
                 config, checkpoint, "--out", out, "--corruptions", *DETERMINISTIC,
                 "--severities", *SEVERITIES, "--work-dir", ws / "work_mmdet_tool"], env, ws)
    assert proc.stdout.count("Testing ") == 1 + 2 * len(DETERMINISTIC)
    with open(out.with_name("m_results.pkl"), "rb") as handle:
        theirs = pickle.load(handle)
    cells = ours["results"]["cells"]
    for corruption in DETERMINISTIC:
        for severity in (0, 1, 2):
            ours_cell = cells["clean"]["0"] if severity == 0 else cells[corruption][str(severity)]
            for metric in ("bbox_mAP", "segm_mAP", "bbox_mAP_50", "segm_mAP_50"):
                assert theirs[corruption][severity][f"coco/{metric}"] == ours_cell[metric], \
                    (corruption, severity, metric)


def test_plain_test_tool_matches_the_clean_cell(trained, ours):
    ws, checkpoint, env = trained
    proc = _run([sys.executable, TOOLS / "test.py", TINY_CONFIG, checkpoint,
                 "--work-dir", ws / "work_test"], env, ws)
    clean = ours["results"]["cells"]["clean"]["0"]
    assert f"coco/bbox_mAP: {clean['bbox_mAP']:.4f}" in proc.stdout + proc.stderr
    assert f"coco/segm_mAP: {clean['segm_mAP']:.4f}" in proc.stdout + proc.stderr
