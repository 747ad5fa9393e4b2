import json
import os

import pytest

from robust_transfer.results import (ResultsError, load_results, merge_results, new_results,
                                     save_results, set_cell)


def make(seed=0, model="m", cells=()):
    r = new_results(task="classification", model=model, metrics=["acc"], seed=seed, dataset="d")
    for corruption, severity, value in cells:
        set_cell(r, corruption, severity, {"acc": value})
    return r


def test_roundtrip_numbers_stay_numbers(tmp_path):
    r = make(cells=[("clean", 0, 0.9), ("fog", 3, 0.5)])
    path = tmp_path / "sub" / "r.json"
    save_results(r, path)
    raw = json.loads(path.read_text())
    assert raw["cells"]["fog"]["3"]["acc"] == 0.5
    assert raw["schema_version"] == 1 and "torch" in raw["versions"]
    assert load_results(path) == raw
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temporary left behind


def test_checkpoint_hash(tmp_path):
    ckpt = tmp_path / "w.pth"
    ckpt.write_bytes(b"abc")
    r = new_results(task="t", model="m", metrics=["x"], checkpoint=str(ckpt))
    assert r["checkpoint_sha256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize("content, message", [
    ('{"schema": "robust-transfer/results", "schema_version": 1, "task"', "not valid JSON"),
    ('{"schema": "other"}', "not a robust-transfer results file"),
    ('{"schema": "robust-transfer/results", "schema_version": 99}', "schema version 99"),
    ('[1, 2]', "expected a JSON object"),
])
def test_bad_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ResultsError, match=message):
        load_results(path)


def test_metric_values_must_be_numbers(tmp_path):
    r = make(cells=[("fog", 1, 0.5)])
    r["cells"]["fog"]["1"]["acc"] = "0.5"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(r))
    with pytest.raises(ResultsError, match="not a number"):
        load_results(path)


def test_merge_shards():
    a = make(cells=[("clean", 0, 0.9), ("fog", 1, 0.5)])
    b = make(cells=[("fog", 2, 0.4), ("snow", 1, 0.3)])
    merged = merge_results([a, b])
    assert merged["cells"]["fog"] == {"1": {"acc": 0.5}, "2": {"acc": 0.4}}
    assert merged["cells"]["snow"]["1"]["acc"] == 0.3


@pytest.mark.parametrize("other", [make(seed=1), make(model="other")])
def test_merge_refuses_different_evaluations(other):
    with pytest.raises(ResultsError, match="different evaluations"):
        merge_results([make(), other])


def test_merge_refuses_conflicting_cells():
    with pytest.raises(ResultsError, match="differs"):
        merge_results([make(cells=[("fog", 1, 0.5)]), make(cells=[("fog", 1, 0.6)])])


def test_save_is_atomic_when_serialisation_fails(tmp_path):
    path = tmp_path / "r.json"
    save_results(make(cells=[("fog", 1, 0.5)]), path)
    before = path.read_bytes()
    broken = make()
    broken["extra"]["x"] = object()  # not JSON serialisable
    with pytest.raises(TypeError):
        save_results(broken, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["r.json"]


def test_results_record_the_seed_scheme_of_their_backend():
    from robust_transfer.corruptions import NUMPY_SEED_SCHEME, TORCH_SEED_SCHEME

    assert make()["seed_scheme"] == NUMPY_SEED_SCHEME
    torch_results = new_results(task="t", model="m", metrics=["x"], backend="torch")
    assert torch_results["seed_scheme"] == TORCH_SEED_SCHEME == "philox4x32-10/v2"
    assert new_results(task="t", model="m", metrics=["x"], backend="torch-batch")["seed_scheme"] \
        == TORCH_SEED_SCHEME
    assert new_results(task="t", model="m", metrics=["x"],
                       backend="cifar-c-files")["seed_scheme"] is None


def test_merge_refuses_results_of_another_seed_scheme():
    from robust_transfer.results import seed_scheme_of

    new = new_results(task="t", model="m", metrics=["x"], backend="torch")
    old = dict(new)
    del old["seed_scheme"]  # written before the field existed: the torch.Generator scheme
    assert seed_scheme_of(old) == "torch-generator/v1"
    with pytest.raises(ResultsError, match="seed_scheme: 'philox4x32-10/v2' != "
                                           "'torch-generator/v1'.*rerun the older results"):
        merge_results([new, old])
    # numpy streams did not change: old numpy files still merge with new ones.
    old_numpy = make(cells=[("fog", 1, 0.5)])
    del old_numpy["seed_scheme"]
    assert merge_results([make(cells=[("fog", 2, 0.4)]), old_numpy])["cells"]["fog"].keys() \
        == {"1", "2"}


def test_planned_grid_merges_over_shards_and_reads_the_tools_extra():
    from robust_transfer.corruptions import CORRUPTION_GROUPS
    from robust_transfer.results import planned_grid, record_planned_grid

    a, b = make(cells=[("clean", 0, 0.9)]), make(cells=[("fog", 1, 0.5)])
    record_planned_grid(a, [("clean", 0), ("snow", 1)])
    record_planned_grid(b, [("fog", 1), ("fog", 2)])
    assert planned_grid(merge_results([a, b])) == (["snow", "fog"], [1, 2])
    assert planned_grid(make()) == (None, None)  # an old file: the reports assume 1..5
    tool = make()
    tool["extra"] = {"corruptions": ["benchmark"], "severities": [0, 1]}  # test_robustness.py
    assert planned_grid(tool) == (list(CORRUPTION_GROUPS["benchmark"]), [1])
