"""Starting the GUI: the application object, fonts, opening the ledger (or
building the demo county first), and clear messages when that fails."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QEventLoop, QLibraryInfo, QLocale, Qt, QTranslator
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QApplication, QMessageBox, QProgressDialog

from core import APP_NAME
from core.errors import CbtError
from core.store import default_db_path, demo_db_path, open_store
from ui.tasks import Task, TaskContext, start

DEMO_PERSONS = 50_000

# Preferred UI fonts, by platform; Qt falls back by itself when none is found.
_FONTS = ("Microsoft YaHei UI", "Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC",
          "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei")


def make_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    # Qt's own words (OK/Cancel, the text-box menu, the calendar) in Chinese.
    translator = QTranslator(app)
    if translator.load(QLocale(QLocale.Language.Chinese, QLocale.Country.China), "qtbase", "_",
                       QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)):
        app.installTranslator(translator)
    QLocale.setDefault(QLocale(QLocale.Language.Chinese, QLocale.Country.China))
    families = set(QFontDatabase.families())
    for family in _FONTS:
        if family in families:
            font = QFont(family)
            font.setPointSize(10)
            app.setFont(font)
            break
    return app


def _build_demo(ctx: TaskContext, path: Path) -> Path:
    from core.demo import build_demo_steps

    # A cancel stops the build and removes the partial file.
    ctx.follow(build_demo_steps(path, DEMO_PERSONS, seed=1, force=True))
    return path


def ensure_demo(parent=None) -> Path | None:
    """The demo county's path, building it first (with progress) if needed."""
    path = demo_db_path()
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    dialog = QProgressDialog("正在生成演示县（虚构数据）…", "取消", 0, DEMO_PERSONS, parent)
    dialog.setWindowTitle(APP_NAME)
    dialog.setWindowModality(Qt.WindowModality.ApplicationModal)
    dialog.setMinimumDuration(0)
    # The dialog closes when the task has really ended (file renamed into place,
    # or removed after a cancel), not when the bar reaches its maximum.
    dialog.setAutoReset(False)
    dialog.setAutoClose(False)
    outcome: dict[str, object] = {}
    loop = QEventLoop()
    task = Task(_build_demo, path)

    def on_progress(done: int, total: int, text: str) -> None:
        dialog.setMaximum(total)
        dialog.setValue(min(done, total))
        dialog.setLabelText(f"正在生成演示县：{text}")

    def on_cancel() -> None:
        dialog.setLabelText("正在取消…" if task.cancel() else "演示县已生成，来不及取消。")

    task.signals.progress.connect(on_progress)
    task.signals.finished.connect(lambda result: (outcome.update(path=result), loop.quit()))
    task.signals.failed.connect(lambda message: (outcome.update(error=message), loop.quit()))
    task.signals.cancelled.connect(loop.quit)
    dialog.canceled.connect(on_cancel)
    dialog.show()
    start(task)
    loop.exec()
    dialog.close()
    if "error" in outcome:
        QMessageBox.critical(parent, APP_NAME, str(outcome["error"]))
    return outcome.get("path")  # type: ignore[return-value]


def run(db: str | None = None, demo: bool = False) -> int:
    app = make_app()
    from ui.main_window import MainWindow

    path: Path | None
    if demo and not db:
        path = ensure_demo()
        if path is None:
            return 1
    else:
        path = Path(db) if db else default_db_path()
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        store = open_store(path)
    except CbtError as exc:
        QMessageBox.critical(None, APP_NAME, str(exc))
        return 2
    window = MainWindow(store)
    window.show()
    if not window.session.role:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, window.configure)  # first run: who, which unit
    try:
        return app.exec()
    finally:
        # Background readers finish (they were cancelled on close) before the
        # store goes away.
        from PySide6.QtCore import QThreadPool

        QThreadPool.globalInstance().waitForDone(5000)
        store.close()
