"""The parent's side of the recorder's wake-ups (`RecorderProcess.notify`
and the child's reports): one wake-up in the pipe at a time, none for what
the child already indexed, and never a commit left without one."""

from __future__ import annotations

from typing import Any

from auditlake.consumers.runner import ConsumerGroup
from auditlake.store.recorder_process import RecorderProcess


class PipeToChild:
    """Stands for the supervisor: keeps what the parent sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def send(self, message: tuple[Any, ...]) -> None:
        self.sent.append(message)


def recorder_at(position: int) -> tuple[RecorderProcess, PipeToChild]:
    def build(_on_batch: Any) -> ConsumerGroup:
        raise AssertionError("no child in these tests")

    recorder = RecorderProcess(build)
    pipe = PipeToChild()
    recorder._child = pipe  # type: ignore[assignment]
    report(recorder, position, head=position)  # the child's first report
    return recorder, pipe


def report(recorder: RecorderProcess, at: int, *, head: int, events: int = 0) -> None:
    recorder._on_report(("at", at, events, 0.01, head))


def test_one_wake_up_at_a_time() -> None:
    recorder, pipe = recorder_at(0)
    recorder.notify(5)
    recorder.notify(9)  # the child reads the head itself: no second wake-up
    assert pipe.sent == [("head", 5)]
    report(recorder, 5, head=5, events=5)  # it read before commit 9 came
    assert pipe.sent[-1] == ("head", 9)  # so it is woken again at once
    report(recorder, 9, head=9, events=4)
    assert len(pipe.sent) == 2 and recorder.lag() == 0


def test_news_of_what_the_child_indexed_already_sends_nothing() -> None:
    recorder, pipe = recorder_at(0)
    # The child read commit 3 before its news reached the parent, and
    # reported first: waking it now would only make it look at nothing.
    report(recorder, 3, head=3, events=3)
    recorder.notify(3)
    assert pipe.sent == []
    recorder.notify(4)  # a newer commit does wake it
    assert pipe.sent == [("head", 4)]


def test_a_report_that_crosses_the_news_leaves_no_commit_unannounced() -> None:
    recorder, pipe = recorder_at(0)
    recorder.notify(3)  # sent; the child has in fact indexed 3 already
    report(recorder, 3, head=3, events=3)
    # The wake-up finds nothing new and is not answered; the next news
    # must still go out.
    recorder.notify(7)
    assert pipe.sent == [("head", 3), ("head", 7)]


def test_a_new_child_is_woken_by_the_next_news_and_its_first_report() -> None:
    recorder, pipe = recorder_at(0)
    recorder.notify(5)  # sent to a child that then dies
    recorder._on_spawn()
    report(recorder, 2, head=2)  # the new child starts where the store is
    assert pipe.sent[-1] == ("head", 5)  # behind what was notified: woken at once
    report(recorder, 5, head=5, events=3)
    recorder.notify(6)
    assert pipe.sent[-1] == ("head", 6)
