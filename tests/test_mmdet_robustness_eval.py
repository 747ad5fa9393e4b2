"""Our P / mPC / rPC against mmdet's own tools/analysis_tools/robustness_eval.py."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from robust_transfer.corruptions import CORRUPTION_GROUPS
from robust_transfer.metrics import summarize
from robust_transfer.results import (cells_by_int_severity, new_results, set_cell,
                                     to_mmdet_robustness_pickle)


def load_mmdet_robustness_eval():
    spec = importlib.util.find_spec("mmdet")
    if spec is None:
        pytest.fail("mmdet is not installed: run scripts/setup.sh")
    path = Path(spec.origin).parent / ".mim" / "tools" / "analysis_tools" / "robustness_eval.py"
    module_spec = importlib.util.spec_from_file_location("mmdet_robustness_eval", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def test_complete_grid_matches_mmdet_get_results(tmp_path, capsys):
    rng = np.random.default_rng(0)
    r = new_results(task="detection", model="m", metrics=["bbox_mAP", "segm_mAP"])
    set_cell(r, "clean", 0, {"bbox_mAP": 0.373, "segm_mAP": 0.342})
    # hold-out corruptions first in the file: the export must still put the 15 benchmark ones first
    for c in list(CORRUPTION_GROUPS["holdout"]) + list(CORRUPTION_GROUPS["benchmark"]):
        for s in range(1, 6):
            set_cell(r, c, s, {"bbox_mAP": float(rng.uniform(0.05, 0.37)),
                               "segm_mAP": float(rng.uniform(0.05, 0.34))})
    pkl = tmp_path / "results.pkl"
    to_mmdet_robustness_pickle(r, pkl)
    rob = load_mmdet_robustness_eval()
    cells = cells_by_int_severity(r)
    for task in ("bbox", "segm"):
        for aggregate, scope in (("benchmark", None), ("all", CORRUPTION_GROUPS["all"])):
            theirs = rob.get_results(str(pkl), dataset="coco", task=task, metric=["mAP"],
                                     prints="all", aggregate=aggregate)
            ours = summarize(cells, f"{task}_mAP", scope)
            p = theirs[0, 0, 0]
            mpc = theirs[:15, 1:, 0].mean() if aggregate == "benchmark" else theirs[:, 1:, 0].mean()
            assert ours.P == pytest.approx(p, rel=1e-6)
            assert ours.mPC == pytest.approx(mpc, rel=1e-5)
            assert ours.rPC == pytest.approx(mpc / p, rel=1e-5)
    assert "Relative Performance under Corruption [rPC] (segm)" in capsys.readouterr().out
