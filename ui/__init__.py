"""PySide6 widgets of the lumbar-instability viewer.  No measurement logic lives here."""
