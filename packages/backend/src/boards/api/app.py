"""The ASGI app uvicorn serves: ``uvicorn boards.api.app:app``.

Importing this module reads the settings (a bad one: one line on stderr, exit code 2) and sets up
logging; it connects to neither the database nor Redis.
"""

from __future__ import annotations

from boards.api.factory import create_app
from boards.logs import configure_logging
from boards.settings import load_settings_or_exit

settings = load_settings_or_exit(api=True)
configure_logging(settings.log_level)
app = create_app(settings)
