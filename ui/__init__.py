"""The PySide6 user interface. Presentation only: every read and write goes
through core/, which knows nothing of Qt."""
