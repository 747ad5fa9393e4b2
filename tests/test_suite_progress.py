"""Suite-level progress: settled steps out of all and the time left, estimated per kind of step."""
import sys

from robust_transfer.study.executor import Executor
from robust_transfer.study.progress import SuiteProgress, format_duration
from robust_transfer.study.steps import Plan, Step


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def step(name, kind="train", task="classification"):
    return Step(id=name, kind=kind, title=name, argv=["true"], task=task)


def test_format_duration():
    assert [format_duration(s) for s in (0, 12.4, 250, 3 * 3600 + 300)] == ["0s", "12s", "4m10s",
                                                                              "3h05m"]


def test_time_left_is_estimated_per_kind_of_step():
    clock = Clock()
    convert, train_a, train_b, evaluate = (step("c", "convert", None), step("ta"), step("tb"),
                                           step("e", "evaluate"))
    progress = SuiteProgress([convert, train_a, train_b, evaluate], clock=clock)
    assert progress.seconds_left() == (None, False) and "time left unknown" in progress.line()
    progress.start(convert); clock.now = 2
    progress.finish(convert, 2.0)
    # no training or evaluation has finished: nothing left can be estimated yet
    assert progress.seconds_left() == (None, False)
    progress.start(train_a); clock.now = 102
    progress.finish(train_a, 100.0)
    # the second training is estimated like the first; the evaluation is not known: a lower bound
    assert progress.seconds_left() == (100.0, False)
    progress.start(train_b); clock.now = 142
    assert progress.seconds_left() == (60.0, False)  # 40 s of the 100 s already ran
    assert progress.line() == "2/4 steps, 1 running, 2m22s elapsed, more than 1m00s left"
    progress.finish(train_b, 100.0); progress.start(evaluate); clock.now = 150
    progress.finish(evaluate, 8.0)
    assert progress.line() == "4/4 steps, 2m30s elapsed"


def test_estimate_is_complete_once_every_kind_left_has_finished_once():
    clock = Clock()
    steps = [step("e1", "evaluate"), step("e2", "evaluate"), step("e3", "evaluate")]
    progress = SuiteProgress(steps, clock=clock)
    progress.start(steps[0]); clock.now = 30
    progress.finish(steps[0], 30.0)
    assert progress.seconds_left() == (60.0, True)
    assert progress.line().endswith("about 1m00s left")


def test_steps_that_did_not_run_count_as_settled_and_take_no_time():
    clock = Clock()
    steps = [step("a"), step("b"), step("c")]
    progress = SuiteProgress(steps, parallel=2, clock=clock)
    progress.finish(steps[0])  # done already
    progress.start(steps[1]); clock.now = 10
    progress.finish(steps[1], 10.0)
    assert progress.seconds_left() == (10.0, True)  # one left, not divided by parallelism it cannot use
    progress.finish(steps[2])
    assert progress.line() == "3/3 steps, 10s elapsed"


def test_executor_prints_suite_progress(tmp_path, capsys):
    steps = [Step(id=f"s{i}", kind="prepare", title=f"step {i}",
                  argv=[sys.executable, "-c", "pass"]) for i in range(3)]
    plan = Plan(suite=None, steps=steps, work_dir=tmp_path, report_dir=tmp_path)
    assert Executor(plan, mode="subprocess", jobs=1).run() == 0
    err = capsys.readouterr().err
    assert "finished step 0" in err and "suite: 1/3 steps" in err
    assert "suite: 3/3 steps" in err and "about" in err.split("suite: 1/3 steps")[1].splitlines()[0]
