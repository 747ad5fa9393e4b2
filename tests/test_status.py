"""Fingerprints of the steps' inputs (robust_transfer/study/fingerprint.py) and `robust-transfer
status`: a stand-in checkpoint replaced under the same id makes the conversion, trainings and
results of that backbone stale and leaves the others done; a changed evaluation setting makes
only the evaluations stale; the executor redoes a stale step after removing its old output."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from robust_transfer.study import Options, build_plan, load_suite
from robust_transfer.study.executor import Executor
from robust_transfer.study.fingerprint import DigestCache, sidecar_path, step_states
from robust_transfer.study.steps import Plan, Step

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "configs" / "full_network.yaml"


def _finished_plan(work: Path, smoke: bool = True, **options) -> Plan:
    """The smoke plan of the full-network suite with every step's output taken as written
    (stand-ins are real files, the rest is only declared done) and its fingerprint recorded."""
    plan = _plan(work, smoke, **options)
    for step in plan.steps:
        if step.id.startswith("prepare:standin/") and not step.makes[0].exists():
            step.makes[0].parent.mkdir(parents=True, exist_ok=True)
            step.makes[0].write_bytes(f"weights of {step.backbone}".encode())
    for step in plan.steps:
        plan.fingerprints.record(step)
    return plan


def _plan(work: Path, smoke: bool = True, **options) -> Plan:
    plan = build_plan(load_suite(SUITE, smoke=smoke), Options(smoke=smoke, work_dir=str(work), **options))
    for step in plan.steps:
        if step.done is not None:
            step.done = lambda: True  # the outputs "exist"; only the fingerprints decide
    return plan


def _states(plan: Plan) -> dict[str, tuple[str, str]]:
    return {step.id: (state, why) for step, state, why in step_states(plan.steps, plan.fingerprints)}


def test_a_replaced_standin_makes_that_backbones_steps_stale_and_no_others(tmp_path):
    plan = _finished_plan(tmp_path)
    before = _states(plan)
    assert {s for s, _ in before.values()} <= {"done", "pending"}
    assert all(before[s.id][0] == "done" for s in plan.steps if s.makes)
    (tmp_path / "standins" / "ant.pth").write_bytes(b"other weights, same id")
    after = _states(_plan(tmp_path))
    stale = {i for i, (state, _) in after.items() if state == "stale"}
    ant_work = {s.id for s in plan.steps if s.backbone == "ant" and s.kind in ("convert", "train", "evaluate")}
    assert ant_work and stale == ant_work
    assert any(s.startswith("convert:") for s in stale) and any(s.startswith("train:") for s in stale)
    assert any(s.startswith("evaluate:") for s in stale)
    convert = next(i for i in stale if i.startswith("convert:"))
    assert "ImageNet checkpoint file changed" in after[convert][1]
    train = next(i for i in stale if i.startswith("train:detection/"))
    assert f"its input step {convert} changed" in after[train][1]
    assert after["prepare:standin/ant"][0] == "done"  # the stand-in's own inputs did not change
    assert all(state == "done" for i, (state, _) in after.items()
               if "/regular" in i or "/swin_t" in i)


def test_other_severities_make_only_the_evaluations_stale(tmp_path):
    """The real suite (published checkpoints, absent here: their sha256 is None both times)."""
    _finished_plan(tmp_path, smoke=False)
    after = _states(_plan(tmp_path, smoke=False, severities=[1, 2, 3, 4, 5]))
    stale = {i for i, (state, _) in after.items() if state == "stale"}
    assert stale and all(i.startswith("evaluate:") for i in stale)
    assert all(after[i][0] == "done" for i in after if i.startswith(("train:", "convert:")))
    evaluation = next(i for i in stale if i.startswith("evaluate:"))
    assert "setting 'args' changed" in after[evaluation][1] or \
        "setting 'recipe' changed" in after[evaluation][1]


def test_the_executor_redoes_a_stale_step_and_records_it(tmp_path):
    """A step whose recorded inputs differ runs again, its old output removed first."""
    source, output = tmp_path / "source.bin", tmp_path / "out.txt"
    source.write_text("v1")
    copy = [sys.executable, "-c", f"import shutil; shutil.copy({str(source)!r}, {str(output)!r})"]

    def plan() -> Plan:
        step = Step("convert:x", "convert", "copy", copy, done=output.is_file, makes=[output],
                    input_files={"source": source})
        from robust_transfer.study.fingerprint import Fingerprints

        p = Plan(type("S", (), {"name": "t", "backbones": {}})(), [step], tmp_path, tmp_path)
        p.fingerprints = Fingerprints(p.steps, p.suite, DigestCache(tmp_path / "cache.json"))
        step.current = p.fingerprints.is_current
        return p

    assert Executor(plan()).run() == 0 and output.read_text() == "v1"
    recorded = json.loads(sidecar_path(plan().steps[0]).read_text())
    assert recorded["inputs"]["files"]["source"] and recorded["step"] == "convert:x"
    assert plan().steps[0].is_done()
    source.write_text("v2, longer")
    again = plan()
    assert not again.steps[0].is_done()
    assert Executor(again).run() == 0 and output.read_text() == "v2, longer"
    assert plan().steps[0].is_done()


def test_digest_cache_hashes_a_file_once_per_size_and_mtime(tmp_path, monkeypatch):
    import robust_transfer.results as results

    big = tmp_path / "big.pth"
    big.write_bytes(b"x" * 1000)
    calls = []
    real = results.file_sha256
    monkeypatch.setattr(results, "file_sha256", lambda p: calls.append(p) or real(p))
    cache = DigestCache(tmp_path / "cache.json")
    first = cache.sha256(big)
    assert cache.sha256(big) == first and len(calls) == 1
    cache.save()
    assert DigestCache(tmp_path / "cache.json").sha256(big) == first and len(calls) == 1
    big.write_bytes(b"y" * 1001)
    assert cache.sha256(big) != first and len(calls) == 2
    assert cache.sha256(tmp_path / "absent") is None


def test_status_command_lists_states_with_why(tmp_path):
    result = subprocess.run([sys.executable, "-m", "robust_transfer.cli", "status", str(SUITE),
                             "--smoke", "--work-dir", str(tmp_path), "--tasks", "classification"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("# suite full_network:")
    assert any(line.startswith("pending  train:classification/regular/full-network") for line in lines)
    assert lines[-1].startswith("0 done, 0 stale,")
    bad = subprocess.run([sys.executable, "-m", "robust_transfer.cli", "status", str(tmp_path / "no.yaml")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no suite file" in bad.stderr
