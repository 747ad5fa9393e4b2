import math

import pytest

from robust_transfer.corruptions import CORRUPTION_GROUPS
from robust_transfer.metrics import (ALEXNET_CLEAN_ERROR, ALEXNET_ERRORS, mean_corruption_error,
                                     relative_mean_corruption_error, summarize)


def grid(value_of, corruptions=None, severities=range(1, 6), clean=0.8):
    cells = {"clean": {0: {"acc": clean}}}
    for c in corruptions or CORRUPTION_GROUPS["all"]:
        cells[c] = {s: {"acc": value_of(c, s)} for s in severities}
    return cells


def test_p_mpc_rpc_over_the_benchmark_set():
    benchmark = CORRUPTION_GROUPS["benchmark"]
    cells = grid(lambda c, s: 0.8 - 0.1 * s + (0.01 if c in benchmark[:5] else 0.0))
    s = summarize(cells, "acc")
    expected_mpc = 0.8 - 0.3 + 0.01 * 5 / 15
    assert s.P == 0.8
    assert s.mPC == pytest.approx(expected_mpc)
    assert s.rPC == pytest.approx(expected_mpc / 0.8)
    assert s.per_severity[1] == pytest.approx(0.7 + 0.01 / 3)
    assert s.complete and not s.missing
    # hold-out corruptions are outside the default scope but have a group mean
    assert s.per_group["holdout"] == pytest.approx(0.5)


def test_missing_cells_are_reported_not_averaged_as_zero():
    cells = grid(lambda c, s: 0.5, severities=[1, 3])
    s = summarize(cells, "acc")
    assert s.mPC == pytest.approx(0.5)  # zero-filling would give 0.2
    assert not s.complete
    assert ("fog", 2) in s.missing and ("fog", 5) in s.missing and ("fog", 1) not in s.missing
    assert len(s.missing) == 15 * 3


def test_no_clean_cell_gives_no_rpc():
    cells = grid(lambda c, s: 0.5)
    del cells["clean"]
    s = summarize(cells, "acc")
    assert s.P is None and s.rPC is None and s.mPC == pytest.approx(0.5)
    assert ("clean", 0) in s.missing


def test_scope_and_string_severities_from_json():
    cells = {"clean": {"0": {"m": 1.0}}, "fog": {"1": {"m": 0.5}, "2": {"m": 0.25}}}
    s = summarize(cells, "m", corruptions=["fog"], severities=[1, 2])
    assert (s.P, s.mPC, s.rPC) == (1.0, 0.375, 0.375)


def test_mce_equals_one_for_alexnet_errors():
    cells = {"clean": {0: {"acc": 100 * (1 - ALEXNET_CLEAN_ERROR)}}}
    for c, e in ALEXNET_ERRORS.items():
        cells[c] = {s: {"acc": 100 * (1 - e)} for s in range(1, 6)}
    assert mean_corruption_error(cells, "acc", scale=100) == pytest.approx(1.0)
    assert relative_mean_corruption_error(cells, "acc", scale=100) == pytest.approx(1.0)


def test_mce_of_a_better_model():
    cells = {c: {s: {"acc": 1 - e / 2} for s in range(1, 6)} for c, e in ALEXNET_ERRORS.items()}
    cells["clean"] = {0: {"acc": 1.0}}
    assert mean_corruption_error(cells, "acc") == pytest.approx(0.5)
    expected = sum((e / 2) / (e - ALEXNET_CLEAN_ERROR) for e in ALEXNET_ERRORS.values()) / 15
    assert relative_mean_corruption_error(cells, "acc") == pytest.approx(expected)
    assert not math.isnan(expected)


def test_a_run_of_the_planned_severities_is_complete_and_says_which():
    """The study evaluated severity 1 only: over its planned grid such a run is complete, and
    the summary says which severities its mean covers; a planned cell absent is missing."""
    from robust_transfer.metrics import scope_text, summarize_document
    from robust_transfer.results import new_results, record_planned_grid, set_cell

    r = new_results(task="t", model="m", metrics=["acc"])
    set_cell(r, "clean", 0, {"acc": 0.8})
    for c in CORRUPTION_GROUPS["benchmark"]:
        set_cell(r, c, 1, {"acc": 0.6})
    unplanned = summarize_document(r)["acc"]  # no grid recorded: judged against 1..5
    assert not unplanned.complete and len(unplanned.missing) == 60
    record_planned_grid(r, [("clean", 0)] + [(c, 1) for c in CORRUPTION_GROUPS["benchmark"]])
    s = summarize_document(r)["acc"]
    assert s.complete and s.mPC == pytest.approx(0.6) and s.severities == [1]
    assert scope_text(s) == "15 corruptions x severity 1"
    assert s.as_dict()["severities"] == [1]
    del r["cells"]["fog"]
    s = summarize_document(r)["acc"]
    assert s.missing == [("fog", 1)] and not s.complete
    assert scope_text(summarize(grid(lambda c, s: 0.5), "acc")) == "15 corruptions x severities 1-5"
