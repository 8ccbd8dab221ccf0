"""Worker tasks: a cancel undoes the work, unless it came after the work was kept."""

from __future__ import annotations

from core.progress import Progress
from ui.tasks import Task, start


def _steps(log: list[str], before_final=None):
    """A core generator in miniature: two steps, the work kept, a final step."""
    try:
        yield Progress(1, 2, "写入")
        yield Progress(2, 2, "写入")
        if before_final:
            before_final()   # e.g. the user clicks 取消 while it is being saved
        log.append("kept")
        yield Progress(2, 2, "完成", final=True)
    except GeneratorExit:
        log.append("closed early")   # where the core rolls back or removes its file
        raise


def _run(qtbot, task: Task) -> list[tuple[str, object]]:
    ended: list[tuple[str, object]] = []
    task.signals.finished.connect(lambda result: ended.append(("finished", result)))
    task.signals.cancelled.connect(lambda: ended.append(("cancelled", None)))
    task.signals.failed.connect(lambda message: ended.append(("failed", message)))
    start(task)
    qtbot.waitUntil(lambda: bool(ended), timeout=5_000)
    return ended


def test_a_cancel_before_the_work_is_kept_closes_the_generator(qtbot):
    log: list[str] = []

    def work(ctx):
        ctx.cancel()   # as if clicked before the first step came back
        ctx.follow(_steps(log))
        return "result"

    assert _run(qtbot, Task(work)) == [("cancelled", None)]
    assert log == ["closed early"]


def test_a_cancel_while_the_work_is_being_kept_comes_too_late(qtbot):
    log: list[str] = []
    asked: list[bool] = []
    task = Task(lambda ctx: (ctx.follow(_steps(log, lambda: asked.append(task.cancel()))),
                             "result")[1])
    assert _run(qtbot, task) == [("finished", "result")]
    assert log == ["kept"]
    assert asked == [True]        # asked while saving: it could not know yet
    assert task.cancel() is False  # asked after: it says so


def test_a_task_without_a_final_step_still_drops_a_result_cancelled_late(qtbot):
    """Counts and lists: a cancel means the result is stale, even if it is whole."""
    def work(ctx):
        ctx.cancel()
        return "stale"

    task = Task(work)
    assert _run(qtbot, task) == [("cancelled", None)]


def test_a_finished_task_lets_go_of_its_arguments(qtbot):
    """The window's tasks stay reachable after they end (their signals refer
    back to them); an import's plan, with its parsed workbook, must not."""
    import gc
    import weakref

    class Plan:
        pass

    plan = Plan()
    gone = weakref.ref(plan)
    task = Task(lambda ctx, p: "done", plan)
    task.signals.finished.connect(lambda result: task)   # as the pages' handlers do
    del plan
    assert _run(qtbot, task) == [("finished", "done")]
    gc.collect()
    assert gone() is None
