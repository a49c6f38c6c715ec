"""The main window: study browser, 2x2 / 1x3 / single / side-by-side layouts of linked views, W/L panel, loading,
fusion and registration docks."""

from __future__ import annotations

import html
import logging
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QTextDocument
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QFrame,
    QGridLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QWidget,
)

from viewer.core.session import Session
from viewer.ui.ai_panel import AiPanel
from viewer.ui.histogram_panel import HistogramPanel
from viewer.ui.mpr_view import MprView
from viewer.ui.recent_files import add_recent_file, recent_files
from viewer.ui.segment_panel import SegmentPanel
from viewer.ui.state import ViewerState
from viewer.ui.study_browser import StudyBrowser
from viewer.ui.volume_3d_view import Volume3DView
from viewer.ui.workers import LoadWorker, ScanWorker, Worker, preload_readers, wait_or_detach

log = logging.getLogger(__name__)
LAYOUTS = ("2x2", "1x3", "single", "side-by-side")
#: Where each layout puts its views: (view, row, column); 'moving' and 'mip' are the fused volume's.
LAYOUT_PLACES = {
    "2x2": (("axial", 0, 0), ("coronal", 0, 1), ("sagittal", 1, 0), ("3d", 1, 1)),
    "1x3": (("axial", 0, 0), ("coronal", 0, 1), ("sagittal", 0, 2)),
    "single": (("axial", 0, 0),),
    "side-by-side": (("axial", 0, 0), ("moving", 0, 1), ("coronal", 1, 0), ("mip", 1, 1)),
}
DOCK_WIDTH = 330
#: Milliseconds closing the window waits for a cancelled background worker, and for an export to finish writing.
CLOSE_WAIT_MS, EXPORT_WAIT_MS = 10000, 30000
#: what the views' place says how to open a study (before the first image, or after it failed to open)
OPEN_HINT = ("Open a study with File &gt; Open file... (Ctrl+O) or Open folder... (Ctrl+Shift+O), drop files "
             "on this window, or double-click a series in the Studies list.")


def ask_unsaved_dialog(parent: QWidget, names: list[str]) -> str:
    """Ask what to do with unsaved segmentation edits on closing: "save", "discard" or "cancel"."""
    box = QMessageBox(QMessageBox.Warning, "radview",
                      "Unsaved segmentation edits: " + ", ".join(names) + "\n\nSave the session before closing?",
                      parent=parent)
    save = box.addButton("Save session...", QMessageBox.AcceptRole)
    discard = box.addButton(QMessageBox.Discard)
    box.addButton(QMessageBox.Cancel)
    box.exec()
    return {save: "save", discard: "discard"}.get(box.clickedButton(), "cancel")


def show_error(parent: QWidget, message: str) -> None:
    """Show a one-line error to the user (the application stays up)."""
    QMessageBox.critical(parent, "radview", message)


class MainWindow(QMainWindow):
    """radview's main window. ``open_path`` loads in the background; views follow ``state``."""

    load_finished = Signal(object)  # Volume
    load_failed = Signal(str)

    def __init__(self):
        super().__init__()
        self.setWindowTitle("radview")
        self.setAcceptDrops(True)
        self.state = ViewerState()
        # before the views connect: they fit a new image to their size, which they have once shown
        self.state.volume_changed.connect(lambda _vol: self._central.setCurrentWidget(self._views_page))
        self.views = {o: MprView(self.state, o) for o in ("axial", "coronal", "sagittal")}
        self.view3d = Volume3DView(self.state)
        for v in self.views.values():
            v.maximize_requested.connect(self._toggle_maximized)
        self._grid = QGridLayout()
        self._grid.setSpacing(2)
        self._views_page = QWidget()
        self._views_page.setLayout(self._grid)
        self.placeholder = QLabel()
        self.placeholder.setAlignment(Qt.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setMargin(40)
        self._central = QStackedWidget()
        self._central.addWidget(self.placeholder)
        self._central.addWidget(self._views_page)
        self.setCentralWidget(self._central)
        self.show_placeholder("<h2>No study open</h2>")
        self.layout_name = "2x2"
        self._maximized: QWidget | None = None
        self.browser = StudyBrowser()
        self.browser.series_activated.connect(self.open_path)
        self.browser.volume_activated.connect(self.show_volume)
        self.histogram = HistogramPanel(self.state)
        self.session = Session()
        self.segment_panel = SegmentPanel(self.state, self.session)
        self._add_dock("Studies", self.browser, Qt.LeftDockWidgetArea)
        self._add_dock("Window / level", self.histogram, Qt.LeftDockWidgetArea)
        self._add_dock("Segmentation", self.segment_panel, Qt.RightDockWidgetArea)
        self.ai_panel = AiPanel(self.state, self.session)
        self.ai_panel.segmentation_ready.connect(self.segment_panel.adopt)
        self.ai_panel.volume_ready.connect(self.show_volume)  # a synthetic image: shown, listed, fusable
        self._add_dock("AI", self.ai_panel, Qt.RightDockWidgetArea)
        self._init_measurements()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setRange(0, 1000)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_loading)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)
        # a message cut at the window's edge, in full, wrapped
        self.statusBar().messageChanged.connect(lambda text: self.statusBar().setToolTip(wrapping_tooltip(text)))
        self._set_busy(False)
        self.worker: LoadWorker | None = None
        self.scan_workers: list[ScanWorker] = []
        #: False in batch runs (--screenshot): errors go to the status bar and ``load_failed`` only.
        self.show_error_dialogs = True
        #: ``ask(names) -> "save" | "discard" | "cancel"`` on closing with unsaved edits (the interactive app
        #: sets :func:`ask_unsaved_dialog`); None never blocks: the unsaved journals are kept for recovery.
        self.ask_unsaved = None
        self._build_menus()
        self.state.volume_changed.connect(self._offer_window_level)
        self._init_label_tools()
        self._init_ai_results()
        self._init_fusion()
        self.set_layout("2x2")
        self.resize(1400, 900)
        QTimer.singleShot(0, preload_readers)  # the first study opened shows its first slice sooner
        QTimer.singleShot(0, self._warm_up_views)  # ... and is drawn without compiling shaders first

    # ------------------------------------------------------------------ construction
    def _warm_up_views(self) -> None:
        """Create the slice views' OpenGL contexts and compile their shaders while idle (viewer.render.warm_up),
        unless a study is already shown."""
        from viewer.render.warm_up import warm_up

        if self.state.volume is not None:
            return
        for view in self.views.values():
            warm_up(view.vtk.GetRenderWindow(), view.orientation)
        self.view3d.vtk.GetRenderWindow().Render()  # its OpenGL context

    def _add_dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        scroll = QScrollArea()  # panels scroll rather than force the window taller than a laptop screen
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setWidget(widget)
        scroll.setMinimumWidth(widget.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
        dock.setWidget(scroll)
        self.addDockWidget(area, dock)
        self.resizeDocks([dock], [DOCK_WIDTH], Qt.Horizontal)
        return dock

    def _add_ai_tabs(self, **panels: QWidget) -> dict[str, QDockWidget]:
        """Docks titled by the keyword names (underscores as spaces), tabbed with the AI dock, which stays in
        front; returns them by title."""
        ai = self.findChild(QDockWidget, "AI")
        docks = {}
        for key, widget in panels.items():
            title = key.replace("_", " ")
            docks[title] = self._add_dock(title, widget, Qt.RightDockWidgetArea)
            self.tabifyDockWidget(ai, docks[title])
        ai.raise_()
        return docks

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "Open &file...", self._open_file_dialog, QKeySequence.Open)
        self._action(file_menu, "Open f&older...", self._open_folder_dialog, "Ctrl+Shift+O")
        self._action(file_menu, "Open &segmentation...", self._open_labels_dialog)
        self._action(file_menu, "&Export segmentation...", self._export_segmentation_dialog)
        self._action(file_menu, "Open s&ession...", self._open_session_dialog)
        self._action(file_menu, "Sa&ve session...", self._save_session_dialog)
        self._action(file_menu, "&Anonymize DICOM...", self.open_anonymize_dialog)
        self._action(file_menu, "Open from &PACS...", self.open_pacs_dialog)
        self._action(file_menu, "Send to PA&CS...", lambda: self.send_to_pacs_dialog())
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.Quit)
        view_menu = self.menuBar().addMenu("&View")
        self.layout_actions = group = QActionGroup(self)
        for name in LAYOUTS:
            act = self._action(view_menu, f"Layout {name}", lambda _=False, n=name: self.set_layout(n))
            act.setCheckable(True)
            act.setChecked(name == "2x2")
            act.setData(name)
            group.addAction(act)
        view_menu.addSeparator()
        self._action(view_menu, "&Reset views", self.reset_views, "R")
        edit_menu = self.menuBar().addMenu("&Edit")
        self.undo_action = self._action(edit_menu, "&Undo", self.segment_panel.undo, QKeySequence.Undo)
        self.redo_action = self._action(edit_menu, "&Redo", self.segment_panel.redo, QKeySequence.Redo)
        toolbar = self.addToolBar("Tools")
        toolbar.setObjectName("Tools")
        modes = QActionGroup(self)
        self.tool_actions = {}
        for tool, text in (("crosshair", "Crosshair"), ("window_level", "Window/level"), ("paint", "Paint"),
                           ("erase", "Erase"), ("ruler", "Ruler"), ("angle", "Angle"), ("ellipse", "Ellipse ROI"),
                           ("rectangle", "Rectangle ROI")):
            act = QAction(text, self, checkable=True, checked=tool == "crosshair")
            act.triggered.connect(lambda _=False, t=tool: self.state.set_tool(t))
            modes.addAction(act)
            toolbar.addAction(act)
            self.tool_actions[tool] = act
        self.wl_action = self.tool_actions["window_level"]
        toolbar.addSeparator()
        for name in LAYOUTS:
            toolbar.addAction(name, lambda n=name: self.set_layout(n))
        toolbar.addAction("Reset", self.reset_views)

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(shortcut)
        act.triggered.connect(slot)
        menu.addAction(act)
        return act

    # ------------------------------------------------------------------ layouts
    @property
    def layout_widgets(self) -> dict[str, QWidget]:
        """Every view a layout can show, by its LAYOUT_PLACES name."""
        return {**self.views, "3d": self.view3d, "moving": self.fusion_control.moving_view,
                "mip": self.fusion_control.mip_view}

    def set_layout(self, name: str) -> None:
        """'2x2' (axial, coronal, sagittal, 3D), '1x3' (the three MPR views), 'single' (axial) or
        'side-by-side' (fixed axial | moving axial in its own frame, cursors linked through the transform;
        fixed coronal | rotating MIP of the moving volume)."""
        if name not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}")
        self.layout_name = name
        self._maximized = None
        widgets = self.layout_widgets
        for w in widgets.values():
            self._grid.removeWidget(w)
            w.hide()
        places = LAYOUT_PLACES[name]
        for key, r, c in places:
            self._grid.addWidget(widgets[key], r, c)
            widgets[key].show()
        rows, cols = 1 + max(r for _, r, _ in places), 1 + max(c for _, _, c in places)
        for i in range(3):
            self._grid.setRowStretch(i, 1 if i < rows else 0)
            self._grid.setColumnStretch(i, 1 if i < cols else 0)
        for act in self.layout_actions.actions():
            act.setChecked(act.data() == name)

    def show_placeholder(self, heading: str) -> None:
        """Show ``heading`` (HTML) and how to open a study where the views are, until an image is shown."""
        self.placeholder.setText(f"{heading}<p>{OPEN_HINT}</p>")
        self._central.setCurrentWidget(self.placeholder)

    def placeholder_text(self) -> str | None:
        """The placeholder's text as the user reads it (None while the views are shown)."""
        if self._central.currentWidget() is not self.placeholder:
            return None
        doc = QTextDocument()
        doc.setHtml(self.placeholder.text())
        return doc.toPlainText()

    def _toggle_maximized(self, view: QWidget) -> None:
        """Double-click: show only ``view``; again: back to the previous layout."""
        if self._maximized is view:
            self.set_layout(self.layout_name)
            return
        for w in self.layout_widgets.values():
            w.setVisible(w is view)
        self._maximized = view

    def set_tool(self, tool: str) -> None:
        """Select what a left-drag does: 'crosshair', 'window_level', 'paint' or 'erase'."""
        self.tool_actions[tool].setChecked(True)
        self.state.set_tool(tool)

    def _offer_window_level(self, vol) -> None:
        """A colour image is shown as stored: no Window/level tool for it (the W/L panel says so)."""
        self.wl_action.setEnabled(not vol.is_rgb)
        if vol.is_rgb and self.state.tool == "window_level":
            self.set_tool("crosshair")

    def reset_views(self) -> None:
        for v in self.views.values():
            v.reset_view()

    # ------------------------------------------------------------------ loading
    def open_path(self, path: str, series=None) -> LoadWorker:
        """Start loading ``path`` in the background (``series``: a SeriesInfo of it from the study browser,
        else its first series); the scan lists its series in the browser, and the first slice shows
        before the series is complete. Returns the worker."""
        if self.worker is not None and self.worker.isRunning():
            self.worker.cancel()
            self.worker.wait()
        self._before_load = (self.state.volume, self.state.labels)
        worker = LoadWorker(path, series, self)
        for signal, slot in ((worker.scanned, self._on_scanned), (worker.geometry_ready, self._on_geometry),
                             (worker.slices_loaded, self.state.slices_loaded.emit),
                             (worker.progress, self._on_progress), (worker.finished_ok, self._on_loaded),
                             (worker.failed, self._on_failed)):
            # a cancelled worker's queued signals must not reach the window once another load started
            signal.connect(lambda *args, w=worker, slot=slot: slot(*args) if w is self.worker else None)
        self.worker = worker
        self._set_busy(True)
        self.statusBar().showMessage(f"loading {path}")
        worker.start()
        return worker

    def open_paths(self, paths: list[str]) -> LoadWorker | None:
        """Open several files/folders: all are scanned into the study browser (in the background), the
        first one is loaded and shown. Returns the first one's worker (None without paths)."""
        paths = [str(p) for p in paths]
        if not paths:
            return None
        if len(paths) > 1:
            scanner = ScanWorker(paths[1:], self)
            scanner.scanned.connect(self._on_scanned)
            scanner.failed.connect(self._tell_error)
            scanner.finished.connect(lambda s=scanner: self.scan_workers.remove(s))
            self.scan_workers.append(scanner)
            scanner.start()
        return self.open_path(paths[0])

    def wait_for_scans(self) -> None:
        """Block until the background scans of ``open_paths`` are done and their series are listed."""
        for scanner in list(self.scan_workers):
            scanner.wait()
        QApplication.processEvents()

    def start(self, paths: list[str], recover: bool = True) -> None:
        """What ``radview [PATH ...]`` does once the window is up: open ``paths`` (all listed, the first
        shown) and, with ``recover``, offer to recover the segmentations of a crashed session (after the
        first path has loaded, or at once without paths)."""
        if recover and paths:
            def then_recover(*_):
                self.load_finished.disconnect(then_recover)
                self.load_failed.disconnect(then_recover)
                QTimer.singleShot(0, self.offer_recovery)

            self.load_finished.connect(then_recover)
            self.load_failed.connect(then_recover)
        elif recover:
            QTimer.singleShot(0, self.offer_recovery)
        self.open_paths(paths)

    def _on_scanned(self, path: str, found: list) -> None:
        self.browser.add_series(path, found)
        self.fusion_control.add_candidates(path, found)
        add_recent_file(path)

    def open_labels(self, path: str):
        """Open a label map file (NIfTI/NRRD/MHA, any grid: resampled by world geometry, names from a JSON
        beside it, ``labels.nii.gz`` -> ``labels.json``) or a DICOM SEG (names and colours from its
        segments) as an editable segmentation of the current volume; returns it (None on error)."""
        from viewer.core.errors import RadviewError
        from viewer.core.segmentation_files import open_segmentation

        vol = self.state.volume
        if vol is None:
            self._tell_error("open an image before its segmentation")
            return None
        try:
            seg = open_segmentation(self.session, vol, path)
        except RadviewError as err:
            self._tell_error(str(err))
            return None
        self.segment_panel.adopt(seg)
        self.state.set_labels(seg.as_volume())
        if seg.warnings:
            self.statusBar().showMessage("; ".join(seg.warnings))
        return seg

    def offer_recovery(self, ask=None) -> list:
        """After a crash: offer the journalled segmentations; reopen their images and restore them.

        ``ask(question) -> bool`` defaults to a Yes/No dialog. Returns the segmentations being restored.
        Every recovered segmentation is restored (:class:`viewer.core.recovery.Recovery`): each one's image
        is opened in turn (the first one's last, so it is the one shown).
        """
        from viewer.core.recovery import Recovery

        recovery = Recovery.find(self.session)
        if recovery.problems:
            self._tell_error("Crash recovery: " + "\n".join(recovery.problems))
        if not recovery:
            return []
        ask = ask or (lambda text: QMessageBox.question(self, "radview", text) == QMessageBox.Yes)
        if not ask(recovery.question()):
            recovery.decline()
            return []
        queue = recovery.images()  # in opening order

        def restore(vol) -> None:
            adopted, errors = recovery.restore(queue.pop(0), vol)
            for err in errors:
                self._tell_error(str(err))
            for seg in adopted:
                self.segment_panel.adopt(seg)
                self.state.set_labels(seg.as_volume())
            next_image()

        def skip(_message: str) -> None:  # the image cannot be opened: its journal stays for the next start
            recovery.skip(queue.pop(0))
            next_image()

        def next_image() -> None:
            if not queue:
                self.load_finished.disconnect(restore)
                self.load_failed.disconnect(skip)
                return
            QTimer.singleShot(0, lambda: self.open_path(queue[0]))

        self.load_finished.connect(restore)
        self.load_failed.connect(skip)
        next_image()
        return recovery.segmentations

    def cancel_loading(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def _set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)

    def _on_geometry(self, vol) -> None:
        vol.meta.setdefault("source_path", self.worker.path)  # sessions re-open images from it
        self.state.set_volume(vol, loading=True)
        self.setWindowTitle(f"radview - {vol.description or vol.modality}")

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.statusBar().showMessage(message)

    def _on_loaded(self, vol) -> None:
        self._set_busy(False)
        self.session.add_volume(vol)
        self.session.release_unused_volumes(keep=vol)
        if vol is not self.state.volume:
            self.state.set_volume(vol)
        else:
            self.state.finish_loading()
        self.histogram.update_histogram()
        self.view3d.refresh()
        self.browser.show_loaded(vol)
        warnings = "; ".join(vol.warnings)
        self.statusBar().showMessage(f"{vol.modality} {vol.size} {vol.units}" + (f" - {warnings}" if warnings else ""))
        self.load_finished.emit(vol)

    def show_volume(self, vol) -> None:
        """Show a volume that is already loaded (e.g. the fused one, after Swap fixed and moving, or a synthetic
        one just made: it gets its row in the study browser)."""
        self.session.add_volume(vol)
        self.browser.add_volume(vol)
        self.state.set_volume(vol)
        self.histogram.update_histogram()
        self.setWindowTitle(f"radview - {vol.description or vol.modality}")

    def _on_failed(self, message: str) -> None:
        self._set_busy(False)
        previous, labels = getattr(self, "_before_load", (None, None))
        if previous is not None and self.state.volume is not previous:  # keep showing what the user had
            self.state.set_volume(previous)
            self.state.set_labels(labels)
        elif previous is None:  # nothing to go back to: say what failed where the image would be
            path = self.worker.path
            problem = message.removeprefix(f"{path}: ")
            self.show_placeholder(f"<h2>Could not open {html.escape(path)}</h2><p>{html.escape(problem)}</p>")
        self.statusBar().showMessage(message)
        self.load_failed.emit(message)
        if self.show_error_dialogs:
            show_error(self, message)

    # ------------------------------------------------------------------ dialogs, drag and drop
    def _open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "", "Images (*.dcm *.nii *.nii.gz *.nrrd *.mha "
                                              "*.mhd);;All files (*)")
        if path:
            self.open_path(path)

    def _open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open DICOM folder")
        if path:
            self.open_path(path)

    def _open_labels_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open segmentation", "", "Label maps (*.nii *.nii.gz *.nrrd "
                                              "*.mha);;DICOM SEG (*.dcm);;All files (*)")
        if path:
            self.open_labels(path)

    # ------------------------------------------------------------------ AI results
    def _init_ai_results(self) -> None:
        """Detections and Compare docks (tabbed with the AI dock) and the ROI tool (drag a box in a view)."""
        from PySide6.QtWidgets import QToolBar

        from viewer.ui.compare_panel import ComparePanel
        from viewer.ui.detections_panel import DetectionsPanel

        self.detections_panel = DetectionsPanel(self.state)
        self.compare_panel = ComparePanel(self.state, self.session, self.ai_panel)
        docks = self._add_ai_tabs(Detections=self.detections_panel, Compare=self.compare_panel)
        self.ai_panel.detections_ready.connect(lambda _d: docks["Detections"].raise_())
        roi = QAction("ROI box", self, checkable=True)
        roi.setToolTip("drag a box in a view: AI runs are restricted to it")
        roi.triggered.connect(lambda _=False: self.state.set_tool("roi"))
        self.tool_actions["crosshair"].actionGroup().addAction(roi)
        toolbar = self.findChild(QToolBar, "Tools")
        toolbar.insertAction(next((a for a in toolbar.actions() if a.isSeparator()), None), roi)
        self.tool_actions["roi"] = roi

    # ------------------------------------------------------------------ fusion and registration
    def _init_fusion(self) -> None:
        """Fusion and Registration docks (tabbed with the AI dock), the Fusion menu, the moving view and MIP."""
        from viewer.ui.fusion_controller import FusionController

        self.fusion_control = control = FusionController(self.state, self.session, self.views, self.view3d,
                                                            self.show_volume, self)
        self.fusion = control.fusion
        self.fusion_panel, self.registration_panel = control.panel, control.registration_panel
        control.failed.connect(self.statusBar().showMessage)
        control.moving_view.maximize_requested.connect(self._toggle_maximized)
        docks = self._add_ai_tabs(Fusion=control.panel, Registration=control.registration_panel)
        control.fused.connect(lambda _vol: docks["Fusion"].raise_())
        menu = self.menuBar().addMenu("F&usion")
        menu.addAction(docks["Fusion"].toggleViewAction())
        menu.addAction(docks["Registration"].toggleViewAction())
        menu.addSeparator()
        panel = control.registration_panel
        self._action(menu, "Register (rigid)", lambda: panel.run("rigid"))
        self._action(menu, "Accept registration", panel.accept)
        self._action(menu, "Undo registration", panel.undo)
        self._action(menu, "Save transform...", panel._save_dialog)
        self._action(menu, "Load transform...", panel._load_dialog)
        menu.addSeparator()
        self._action(menu, "Side-by-side layout", lambda: self.set_layout("side-by-side"))

    # ------------------------------------------------------------------ label tools
    def _init_label_tools(self) -> None:
        """The label tools panel (dock 'Label tools', tabbed with the AI dock) and Tools > Label tools."""
        from viewer.ui.label_tools_panel import LabelToolsPanel

        self.label_tools = LabelToolsPanel(self.state, self.session, self.segment_panel)
        docks = self._add_ai_tabs(Label_tools=self.label_tools)
        self.menuBar().addMenu("&Tools").addAction(docks["Label tools"].toggleViewAction())

    # ------------------------------------------------------------------ measurements, export, anonymize, sessions
    def _init_measurements(self) -> None:
        """Measurement tools in the MPR views and their table (dock 'Measurements')."""
        from viewer.ui.measure_tool import MeasurementPanel, MeasureTool

        self.measure_tool = MeasureTool(self.state, self.session, self.views, self)
        self.measure_tool.failed.connect(self.statusBar().showMessage)
        self.measurement_panel = MeasurementPanel(self.measure_tool)
        self._add_ai_tabs(Measurements=self.measurement_panel)
        self.task_worker = None

    def _tell_error(self, message: str) -> None:
        """Report an error in the status bar and, unless ``show_error_dialogs`` is off, in a dialog."""
        self.statusBar().showMessage(message)
        if self.show_error_dialogs:
            show_error(self, message)

    def export_segmentation(self, path: str):
        """Export the edited segmentation to ``path`` (.nii.gz/.nrrd/.mha, or .dcm DICOM SEG for DICOM
        images) with ``<name>.audit.json`` beside it, in the background; returns the worker (None if
        there is nothing to export)."""
        from viewer.core.io.seg import unreferenced_voxels
        from viewer.ui.export_dialog import export_worker

        seg = self.segment_panel.segmentation
        if seg is None:
            self._tell_error("no segmentation to export")
            return None
        worker = export_worker(self.session, seg, path, self)
        as_seg = path.lower().endswith(".dcm")
        lost = unreferenced_voxels(seg.array, seg.reference.meta.get("missing_slices")) if as_seg else 0
        note = f"; {lost} labelled voxel(s) on the series' missing slices are not in the SEG" if lost else ""
        worker.finished_ok.connect(lambda paths: self.statusBar().showMessage(
            f"exported {paths[0]} and {paths[1]}{note}"))
        worker.finished_ok.connect(lambda paths: setattr(self, "last_export", str(paths[0])))  # for Send to PACS
        worker.failed.connect(self._tell_error)
        self.task_worker = worker
        worker.start()
        return worker

    def _export_segmentation_dialog(self) -> None:
        from viewer.ui.export_dialog import ask_export_path

        seg = self.segment_panel.segmentation
        if seg is None:
            self._tell_error("no segmentation to export")
            return
        path = ask_export_path(self, self.state.volume, seg.name)
        if path:
            self.export_segmentation(path)

    def open_anonymize_dialog(self, input_path: str = ""):
        """Show the Anonymize DICOM dialog (non-modal), by default on the current image's source; returns it."""
        from viewer.ui.anonymize_dialog import AnonymizeDialog

        vol = self.state.volume
        if not input_path and vol is not None and vol.meta.get("format") == "dicom":
            input_path = str(vol.meta.get("source_path") or "")
        dialog = AnonymizeDialog(self, input_path)
        dialog.show()
        return dialog

    def open_pacs_dialog(self):
        """Show File > Open from PACS (non-modal): what it retrieves opens here; returns the dialog."""
        from viewer.ui.pacs_dialog import OpenFromPacsDialog, open_retrieved

        dialog = OpenFromPacsDialog(self)
        dialog.retrieved.connect(lambda images, segs: open_retrieved(self, images, segs))
        dialog.show()
        return dialog

    def send_to_pacs_dialog(self, path: str = ""):
        """Show File > Send to PACS (non-modal), by default on the last DICOM SEG exported; returns the dialog."""
        from viewer.ui.pacs_send_dialog import SendToPacsDialog

        last = getattr(self, "last_export", "")
        dialog = SendToPacsDialog(self, path or (last if last.lower().endswith(".dcm") else ""))
        dialog.show()
        return dialog

    def save_session(self, folder: str) -> Path:
        """Save the session (images by path, segmentations, measurements, audit log) into ``folder``."""
        path = self.session.save(folder)
        self.statusBar().showMessage(f"session saved to {path}")
        return path

    def open_session(self, folder: str) -> bool:
        """Open a saved session: its first image, its segmentations and measurements; False on error."""
        from viewer.core.errors import RadviewError

        before = len(self.session.volumes), set(self.session.segmentations)
        try:
            self.session.load(folder)
        except RadviewError as err:
            self._tell_error(str(err))
            return False
        opened = self.session.volumes[before[0]:]
        fixed = [v for v in opened if v is self.fusion.fixed]  # a fused session shows its fixed image first
        opened = fixed + [v for v in opened if v is not self.fusion.fixed]
        if opened:
            self.state.set_volume(opened[0])
            self.histogram.update_histogram()
            self.view3d.refresh()
            for uid, seg in self.session.segmentations.items():
                if uid not in before[1] and seg.reference is opened[0]:
                    self.segment_panel.adopt(seg)
                    self.state.set_labels(seg.as_volume())
        self.measure_tool.refresh()
        return True

    def _save_session_dialog(self) -> bool:
        """Ask for a folder and save the session there; False if cancelled or the save failed."""
        from viewer.core.errors import RadviewError

        folder = QFileDialog.getExistingDirectory(self, "Save session into folder")
        if not folder:
            return False
        try:
            self.save_session(folder)
        except (OSError, RadviewError) as err:
            self._tell_error(f"cannot save the session into {folder}: {err}")
            return False
        return True

    def _open_session_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open session folder")
        if folder:
            self.open_session(folder)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for p in recent_files():
            self.recent_menu.addAction(p, lambda p=p: self.open_path(p))

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_paths(paths)
            event.acceptProposedAction()

    def stop_workers(self) -> list[Worker]:
        """Cancel every running background worker of the window (loading, scans, AI, registration, MIP,
        anonymization; an export is not cancelled, it finishes writing its file) and wait for each, at most
        CLOSE_WAIT_MS (EXPORT_WAIT_MS for the export). Returns the ones still running, which are detached from
        the window so that deleting it cannot destroy a running thread."""
        running = [w for w in self.findChildren(Worker) if w.isRunning()]
        for w in running:
            if w is not self.task_worker:
                w.cancel()
        return [w for w in running
                if not wait_or_detach(w, EXPORT_WAIT_MS if w is self.task_worker else CLOSE_WAIT_MS)]

    def _keep_unsaved_on_close(self) -> bool | None:
        """Whether closing keeps the journals of unsaved segmentations for recovery; None to stay open
        (the user cancelled, or cancelled or failed saving). Asks ``ask_unsaved`` when set."""
        unsaved = self.session.unsaved()
        if not unsaved:
            return False
        if self.ask_unsaved is None:
            log.info("unsaved edits of %s kept: offered for recovery at the next start", ", ".join(unsaved))
            return True
        answer = self.ask_unsaved(unsaved)
        if answer == "save":
            return False if self._save_session_dialog() else None
        return False if answer == "discard" else None

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        stuck = self.stop_workers()
        if stuck:
            log.warning("closing while %s still run", ", ".join(w.what for w in stuck))
        self.worker = None  # the cancelled load's queued signals are dropped (open_path's gate)
        dialogs, self.show_error_dialogs = self.show_error_dialogs, False  # none for a job cancelled by closing
        QApplication.sendPostedEvents()  # the workers' last signals land while the views can still draw
        self.show_error_dialogs = dialogs
        keep = self._keep_unsaved_on_close()
        if keep is None:
            event.ignore()
            return
        self.show_error_dialogs = False
        self.session.close(keep_unsaved=keep)
        self.fusion_control.close()
        for timer in self.findChildren(QTimer):  # no deferred redraw (3D surfaces, previews) after Finalize
            timer.stop()
        for w in (*self.views.values(), self.view3d):
            w.vtk.Finalize()
        super().closeEvent(event)


def wrapping_tooltip(text: str) -> str:
    """``text`` as a rich-text tooltip, which Qt wraps (a plain one is a single line, cut at the screen's edge),
    with a break opportunity (a zero-width space) after each path separator so long paths wrap too; "" stays ""
    (no tooltip)."""
    if not text:
        return ""
    escaped = html.escape(text).replace("/", "/\u200b").replace("\\", "\\\u200b")
    return f"<p style='white-space:pre-wrap'>{escaped}</p>"
