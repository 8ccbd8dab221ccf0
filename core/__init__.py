"""参保通 core: plain Python, no Qt. The GUI (ui/) and the CLI (main.py) both sit on it."""

__version__ = "0.1.0"
APP_NAME = "参保通"
APP_ID = "canbaotong"
