import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robust_transfer.grid import (Cell, build_cells, find_shard_paths, is_shard_path, parse_shard, run_grid,
                                  select_shard, shard_path)
from robust_transfer.corruptions import CORRUPTION_GROUPS
from robust_transfer.results import ResultsError, load_results, merge_results, new_results

WORKER = Path(__file__).with_name("_grid_worker.py")
# The worker imports the package from this checkout, installed or not.
ENV = {**os.environ, "PYTHONPATH": str(WORKER.parent.parent)}


def test_build_cells_groups_and_clean():
    cells = build_cells("noise", [0, 1, 2])
    assert cells[0] == Cell("clean", 0)
    assert Cell("shot_noise", 2) in cells and len(cells) == 1 + 3 * 2
    assert build_cells(None, [0]) == [Cell("clean", 0)]
    assert len(build_cells("all", range(6))) == 1 + 19 * 5


@pytest.mark.parametrize("bad", [[6], [-1], ["x"]])
def test_bad_severities(bad):
    with pytest.raises(ValueError, match="severit"):
        build_cells("benchmark", bad)


def test_unknown_corruption_lists_allowed():
    with pytest.raises(ValueError, match="gaussian_noise"):
        build_cells("not_a_corruption", [1])


def test_shards_partition_the_grid():
    cells = build_cells("benchmark", range(6))
    shards = [select_shard(cells, i, 4) for i in range(4)]
    assert sorted(c for s in shards for c in s) == sorted(cells)
    assert parse_shard("2/4") == (2, 4) and parse_shard(None) == (0, 1)
    for bad in ("4/4", "a/b", "1"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)


def evaluate(cell):
    return {"acc": 1.0 - cell.severity / 10}


def test_resume_skips_finished_cells(tmp_path):
    path = tmp_path / "r.json"
    cells = build_cells(["fog", "snow"], range(6))
    calls = []
    run_grid(cells[:4], lambda c: calls.append(c) or evaluate(c), new_results(task="t", model="m", metrics=["acc"]),
             path, progress=False)
    with pytest.raises(ResultsError, match="--resume"):
        run_grid(cells, evaluate, new_results(task="t", model="m", metrics=["acc"]), path, progress=False)
    calls.clear()
    out = run_grid(cells, lambda c: calls.append(c) or evaluate(c),
                   new_results(task="t", model="m", metrics=["acc"]), path, resume=True, progress=False)
    assert calls == cells[4:]
    assert load_results(path)["cells"] == out["cells"]
    with pytest.raises(ResultsError, match="different evaluations"):
        run_grid(cells, evaluate, new_results(task="t", model="m", metrics=["acc"], seed=7), path,
                 resume=True, progress=False)


def test_resume_refuses_a_file_of_another_seed_scheme(tmp_path):
    path = tmp_path / "r.json"
    cells = build_cells(["fog"], range(3))
    run_grid(cells[:2], evaluate, new_results(task="t", model="m", metrics=["acc"],
                                              backend="torch", seed_scheme="torch-generator/v1"),
             path, progress=False)
    with pytest.raises(ResultsError, match="seed_scheme: 'torch-generator/v1' != 'philox4x32-10/v2'"):
        run_grid(cells, evaluate, new_results(task="t", model="m", metrics=["acc"], backend="torch"),
                 path, resume=True, progress=False)


def run_worker(path, *extra):
    return subprocess.run([sys.executable, str(WORKER), str(path), *extra], check=True,
                          capture_output=True, text=True, timeout=120, env=ENV)


def test_sigkill_leaves_a_valid_file_that_resume_completes(tmp_path):
    reference = tmp_path / "reference.json"
    run_worker(reference)
    path = tmp_path / "killed.json"
    kills = 0
    for delay in (0.6, 0.9, 1.3):  # the worker imports for ~0.5 s, then writes a cell every ~10 ms
        proc = subprocess.Popen([sys.executable, str(WORKER), str(path), "--delay", "0.01"], env=ENV)
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        if path.exists():
            load_results(path)  # valid after every kill
    assert kills >= 1
    run_worker(path)
    assert load_results(path)["cells"] == load_results(reference)["cells"]


def test_shard_files_are_named_and_found_next_to_their_results(tmp_path):
    results = tmp_path / "ant__full-network.json"
    assert shard_path(results, 2, 4) == tmp_path / "ant__full-network.shard2-of-4.json"
    assert shard_path(results.with_suffix(".pkl"), 0, 2).name == "ant__full-network.shard0-of-2.pkl"
    assert find_shard_paths(results) == []
    for i in (1, 0):
        shard_path(results, i, 2).write_text("{}")
    (tmp_path / "ant__fixed-feature.shard0-of-2.json").write_text("{}")  # another grid's
    shard_path(results.with_suffix(".pkl"), 0, 2).write_text("")  # predictions, not results
    assert find_shard_paths(results) == [shard_path(results, 0, 2), shard_path(results, 1, 2)]
    assert find_shard_paths(shard_path(results, 0, 2)) == []
    assert is_shard_path(shard_path(results, 1, 2)) and not is_shard_path(results)


def test_sharded_runs_merge_to_the_full_grid(tmp_path):
    reference = tmp_path / "full.json"
    run_worker(reference)
    shards = []
    for i in range(3):
        shards.append(tmp_path / f"shard{i}.json")
        run_worker(shards[-1], "--shard", f"{i}/3")
    merged = merge_results(load_results(p) for p in shards)
    assert merged["cells"] == load_results(reference)["cells"]


def test_the_planned_grid_is_recorded_also_by_a_shard(tmp_path):
    """A shard records the whole grid it is part of, so a merge of some shards still knows
    which cells are missing; without ``planned`` the run's own cells are the plan."""
    from robust_transfer.results import planned_grid

    cells = build_cells("benchmark", [0, 1])
    out = run_grid(select_shard(cells, 1, 4), evaluate, new_results(task="t", model="m", metrics=["acc"]),
                   tmp_path / "s.json", progress=False, planned=cells)
    assert planned_grid(out) == (list(CORRUPTION_GROUPS["benchmark"]), [1])
    assert load_results(tmp_path / "s.json")["grid"] == {
        "corruptions": list(CORRUPTION_GROUPS["benchmark"]), "severities": [0, 1]}
    own = run_grid(build_cells(["fog"], [0, 3]), evaluate,
                   new_results(task="t", model="m", metrics=["acc"]), None, progress=False)
    assert planned_grid(own) == (["fog"], [3])
