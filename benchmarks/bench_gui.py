"""GUI timings the tests do not assert (they pin behaviour, not speed): start-up, demo screenshot, AI responsiveness.

- ``startup_s``: a fresh Python until the radview main window is shown (torch/MONAI not imported); peer: a
  bare PySide6 QMainWindow shown the same way (the toolkit's floor).
- ``demo_screenshot_s``: ``radview --demo --screenshot`` wall time (demo generation, load, render, PNG).
- ``ai_worker_max_stall_s``: the longest gap between 20 ms timer ticks on the GUI thread while the built-in
  model's sliding window runs in the AI worker; peer: the same job run on the GUI thread (the event loop is
  blocked for all of it).

Needs a display (``make bench`` runs it under xvfb-run). Prints JSON.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPEATS = 3
START_RADVIEW = ("from PySide6.QtWidgets import QApplication; app = QApplication([]);"
                 "from viewer.ui.main_window import MainWindow; w = MainWindow(); w.show(); app.processEvents();")
START_BARE_QT = ("from PySide6.QtWidgets import QApplication, QMainWindow; app = QApplication([]);"
                 "w = QMainWindow(); w.show(); app.processEvents();")


def started_s(code: str) -> tuple[float, bool]:
    """(seconds from a fresh interpreter's first statement to the end of ``code``, torch or monai imported)."""
    timed = ("import time, sys; t = time.perf_counter();" + code
             + "print(time.perf_counter() - t, 'torch' in sys.modules or 'monai' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", timed], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), out[1] == "True"


def demo_screenshot_s(folder: Path) -> float:
    """Wall time of ``radview --demo --screenshot``; fails if the PNG is not written."""
    out = folder / "shot.png"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "viewer", "--demo", "--screenshot", str(out)], check=True,
                   capture_output=True, timeout=600)
    elapsed = time.perf_counter() - t
    if not out.is_file():
        raise RuntimeError("radview --demo --screenshot wrote no PNG")
    return elapsed


def ai_stalls(folder: Path) -> dict:
    """Longest GUI-thread stall while the built-in model runs in the AI worker, and on the GUI thread."""
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from viewer.core.phantom import write_demo_study
    from viewer.core.progress import CancelToken
    from viewer.ui.ai_panel import segment_job
    from viewer.ui.main_window import MainWindow

    study = write_demo_study(folder / "demo")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow()
    window.show_error_dialogs = False
    window.show()
    loop = QEventLoop()
    window.load_finished.connect(lambda _vol: loop.quit())
    window.open_path(str(study.ct_dir))
    loop.exec()
    panel = window.ai_panel
    panel.models.setCurrentRow([c.id for c in panel._cards].index("abdomen_ct_unet"))
    gaps, last, running = [], [time.perf_counter()], [False]

    def tick() -> None:
        now = time.perf_counter()
        if running[0]:
            gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(20)
    panel.segmentation_ready.connect(lambda _seg: loop.quit())
    worker = panel.run_model()
    worker.progress.connect(lambda fraction, message: running.__setitem__(0, "window" in message))
    loop.exec()
    timer.stop()
    t = time.perf_counter()  # peer: the same job on the GUI thread
    segment_job("abdomen_ct_unet", window.state.volume, layer=True)(lambda f, m: None, CancelToken())
    on_gui_thread = time.perf_counter() - t
    window.close()
    app.processEvents()
    return {"ai_worker_max_stall_s": round(max(gaps[1:]), 4), "ai_worker_ticks": len(gaps),
            "peer_ai_on_gui_thread_stall_s": round(on_gui_thread, 3)}


def main() -> int:
    radview = [started_s(START_RADVIEW) for _ in range(REPEATS)]
    bare = [started_s(START_BARE_QT)[0] for _ in range(REPEATS)]
    startup = statistics.median(s for s, _ in radview)
    peer_startup = statistics.median(bare)
    with tempfile.TemporaryDirectory() as tmp:
        screenshot = demo_screenshot_s(Path(tmp))
        stalls = ai_stalls(Path(tmp))
    print(json.dumps({
        "benchmark": "gui",
        "startup_s": round(startup, 3),
        "startup_imports_torch_or_monai": any(imported for _, imported in radview),
        "peer": "bare PySide6 QMainWindow shown (startup); the AI job on the GUI thread (stall)",
        "peer_startup_s": round(peer_startup, 3),
        "startup_ratio_radview_over_bare_qt": round(startup / peer_startup, 2),
        "demo_screenshot_s": round(screenshot, 2),
        **stalls,
        "stall_ratio_gui_thread_over_worker": round(stalls["peer_ai_on_gui_thread_stall_s"]
                                                   / stalls["ai_worker_max_stall_s"], 1),
        "goals": {"startup_s": 2.0, "demo_screenshot_s": 120, "ai_worker_max_stall_s": 0.1},
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
