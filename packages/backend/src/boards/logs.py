"""One log format for every role: time, pid, thread, logger, level, message.

It is dramatiq's own format, so the dramatiq supervisor process (which never imports boards)
logs exactly like the API, the worker processes and the CLI. Every record, its traceback
included, goes through :func:`boards.redact.scrub` as it is made: no password, token, SQL
statement or bound parameter reaches the log, whichever library logged it and whichever handler
writes it (uvicorn installs its own for its loggers).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any

from boards.redact import scrub

LOG_FORMAT = (
    "[%(asctime)s] [PID %(process)d] [%(threadName)s] [%(name)s] [%(levelname)s] %(message)s"
)

#: Loggers that libraries give handlers of their own; they are made to use the root handler.
_LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic", "dramatiq")


class _QuietHealthAccess(logging.Filter):
    """Drop uvicorn access-log lines for successful liveness probes (the HEALTHCHECK)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) >= 5:
            path, status = args[2], args[4]
            if path == "/health" and status == 200:
                return False
        return True


_make_record = logging.getLogRecordFactory()
_traceback = logging.Formatter()


def _scrub_message(record: logging.LogRecord) -> None:
    message = record.getMessage()
    if scrub(message) == message:
        return
    if isinstance(record.args, tuple):
        # Arguments scrubbed one by one: formatters and filters (uvicorn's access log,
        # _QuietHealthAccess) read them.
        record.args = tuple(scrub(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        message = record.getMessage()
        if scrub(message) == message:
            return
    record.msg, record.args = scrub(message), None


def _scrubbed_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """A log record whose message and traceback are scrubbed."""
    record = _make_record(*args, **kwargs)
    # A bad format string is logging's to report, when the record is written; and a log call
    # must never raise into the code that made it.
    with contextlib.suppress(Exception):
        _scrub_message(record)
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = scrub(_traceback.formatException(record.exc_info))
    return record


def configure_logging(level: str = "info", *, stream: object | None = None) -> None:
    """(Re)configure the root logger; safe to call more than once."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(_QuietHealthAccess())
    logging.setLogRecordFactory(_scrubbed_record)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _LIBRARY_LOGGERS:
        lib = logging.getLogger(name)
        for old in list(lib.handlers):
            lib.removeHandler(old)
        lib.propagate = True
        lib.setLevel(logging.NOTSET)
    # alembic announces each of its plugins at INFO on every run.
    logging.getLogger("alembic.runtime.plugins").setLevel(max(root.level, logging.WARNING))


def one_line(exc: BaseException) -> str:
    """An exception as one short line (database errors span several), scrubbed."""
    text = " ".join(scrub(str(exc)).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]
