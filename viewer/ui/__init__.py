"""PySide6 widgets: main window, views, panels, tools, background workers."""
