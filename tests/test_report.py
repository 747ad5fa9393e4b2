import csv
import subprocess
import sys

import pytest

from robust_transfer.corruptions import CORRUPTION_GROUPS
from robust_transfer.report import write_report
from robust_transfer.results import new_results, save_results, set_cell


def detection_results(model, backbone, mode, drop=0.1, severities=range(1, 6)):
    r = new_results(task="detection", model=model, backbone=backbone, transfer_mode=mode,
                    metrics=["bbox_mAP", "segm_mAP"])
    set_cell(r, "clean", 0, {"bbox_mAP": 0.4, "segm_mAP": 0.35})
    for c in CORRUPTION_GROUPS["all"]:
        for s in severities:
            set_cell(r, c, s, {"bbox_mAP": 0.4 - drop * s / 5, "segm_mAP": 0.35 - drop * s / 5})
    return r


@pytest.fixture
def two_models():
    return [detection_results("mrcnn_regular_full", "regular", "full-network", 0.2),
            detection_results("mrcnn_prime_full", "PRIME", "full-network", 0.1, severities=[1, 2, 3])]


def test_report_files_and_numbers(tmp_path, two_models):
    written = write_report(two_models, tmp_path)
    md = (tmp_path / "summary.md").read_text()
    # regular: P 40.0, mPC = 0.4 - 0.2*3/5 = 0.28 -> 28.0, rPC 70.0
    assert "| regular | full-network | 40.0 | 28.0 | 70.0 |" in md
    # PRIME ran only severities 1..3: flagged with *, averaged over what ran
    assert "| PRIME | full-network | 40.0 | 36.0* | 90.0 |" in md
    assert "Missing cells" in md
    assert r"\toprule" in (tmp_path / "summary.tex").read_text()
    rows = list(csv.reader((tmp_path / "long.csv").open()))
    assert rows[0][:3] == ["model", "task", "backbone"]
    assert len(rows) - 1 == 2 * (1 + 19 * 5) + 2 * (1 + 19 * 3)
    summary_rows = list(csv.reader((tmp_path / "summary.csv").open()))
    assert summary_rows[1][:5] == ["regular", "full-network", "40.0", "28.0", "70.0"]
    pngs = written["plots"]
    assert len(pngs) == 2 * 2 * 2 + 2
    assert all(p.stat().st_size > 5000 and p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
    assert "mrcnn" not in written["terminal"] and "regular" in written["terminal"]


def test_report_cli(tmp_path, two_models):
    paths = []
    for r in two_models:
        paths.append(tmp_path / f"{r['model']}.json")
        save_results(r, paths[-1])
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "robust_transfer.cli", "report", *map(str, paths),
                           "--out", str(out), "--no-plots"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "40.0" in proc.stdout and (out / "summary.md").exists()


def test_imagenet_robustness_correlation(tmp_path):
    models = [detection_results(f"m{i}", f"bb{i}", "fixed-feature", drop) for i, drop in
              enumerate([0.3, 0.2, 0.1, 0.05])]
    table = tmp_path / "imagenet.yaml"
    table.write_text("metric: ImageNet-C rPC\nvalues: {bb0: 40, bb1: 50, bb2: 70, bb3: 60}\n")
    proc_paths = []
    for r in models:
        proc_paths.append(tmp_path / f"{r['model']}.json")
        save_results(r, proc_paths[-1])
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "robust_transfer.cli", "report", *map(str, proc_paths),
                           "--out", str(out), "--imagenet-robustness", str(table)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader((out / "transfer_correlation.csv").open()))
    # downstream rPC ranks bb0 < bb1 < bb2 < bb3, ImageNet ranks bb0 < bb1 < bb3 < bb2: rho = 0.8
    assert {r["metric"] for r in rows} == {"bbox_mAP", "segm_mAP"}
    assert all(r["Spearman rho"] == "0.80" and r["backbones"] == "4" for r in rows)
    assert (out / "plots" / "scatter_detection_bbox_mAP_fixed-feature.png").stat().st_size > 5000


def test_backbones_sharing_a_config_get_their_own_plots(tmp_path):
    models = [detection_results("tiny_cfg", "plain", "full-network"),
              detection_results("tiny_cfg", "noise_aug", "full-network")]
    written = write_report(models, tmp_path)
    heatmaps = sorted(p.name for p in written["plots"] if p.name.startswith("heatmap_"))
    assert len(heatmaps) == len(set(heatmaps)) == 4
    assert any("noise_aug" in name for name in heatmaps)


def test_one_renderer_for_p_mpc_rpc_in_both_styles():
    from robust_transfer.metrics import Summary
    from robust_transfer.tables import PAPER, TOOL, prc_table

    full = Summary(metric="bbox_mAP", P=0.4, mPC=0.2, rPC=0.5)
    partial = Summary(metric="mIoU", P=40.0, mPC=None, rPC=None, missing=[("fog", 1)])
    rows = [(["a"], {"det": (full, 1.0), "seg": (partial, 100.0)}, ["x"]), (["b"], {}, ["y"])]
    header, body = prc_table(["model"], ["det", "seg"], rows, style=PAPER, extra_header=["note"])
    assert header == ["model", "det P", "det mPC", "det rPC", "seg P", "seg mPC", "seg rPC", "note"]
    assert body == [["a", "40.0", "20.0", "50.0", "40.0", "–", "–", "x"], ["b"] + ["–"] * 6 + ["y"]]
    flagged = Summary(metric="m", P=0.4, mPC=0.2, rPC=0.5, missing=[("fog", 2)])
    assert prc_table([], ["m"], [([], {"m": (flagged, 1.0)}, [])])[1] == [["40.0", "20.0*", "50.0"]]
    header, body = prc_table(["metric"], [""], [(["mIoU"], {"": (partial, 100.0)}, [])], style=TOOL)
    assert header == ["metric", "P", "mPC", "rPC"] and body == [["mIoU", "40.00", "n/a", "n/a"]]
    assert prc_table([], [""], [([], {"": (full, 1.0)}, [])], style=TOOL)[1] == [["0.400", "0.200", "50.0%"]]


@pytest.mark.parametrize("dataset, label, absent", [
    ("cifar10", "mean corruption error (unnormalised)", "AlexNet"),
    ("imagenet", "mCE (AlexNet-normalised)", "unnormalised")])
def test_classification_details_name_the_corruption_error_that_fits_the_data_set(
        tmp_path, dataset, label, absent):
    r = new_results(task="classification", model=f"resnet_{dataset}", backbone="regular",
                    transfer_mode="full-network", metrics=["top1"], dataset=dataset)
    set_cell(r, "clean", 0, {"top1": 90.0})
    for c in CORRUPTION_GROUPS["benchmark"]:
        set_cell(r, c, 1, {"top1": 60.0})
    write_report([r], tmp_path, plots=False)
    details = (tmp_path / "summary.md").read_text()
    assert label in details and absent not in details


def test_a_run_of_the_studys_severity_is_complete_and_says_what_its_mean_covers(tmp_path):
    r = detection_results("mrcnn_regular_s1", "regular", "full-network", severities=[1])
    r["grid"] = {"corruptions": list(CORRUPTION_GROUPS["benchmark"]), "severities": [1]}
    written = write_report([r], tmp_path, plots=False)
    md = (tmp_path / "summary.md").read_text()
    assert "| regular | full-network | 40.0 | 38.0 | 95.0 |" in md  # no '*': nothing planned is missing
    assert "Missing cells" not in md
    assert "mPC over 15 corruptions x severity 1" in written["terminal"]
