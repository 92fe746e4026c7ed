"""Passwords, tokens and SQL out of every message the service shows.

:func:`mask_url` is the one masking function for a URL (settings errors, start-up lines);
:func:`scrub` applies it to every URL in a text, masks secret-looking ``key=value`` pairs and
``Bearer`` tokens, and cuts the SQL and bound parameters SQLAlchemy puts in its exception
text. Every log line goes through :func:`scrub` (``boards.logs``). Masking errs on the side of
hiding too much: a URL it cannot read is masked from its first ``:`` to its last ``@``.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

MASK = "***"

#: Query keys whose value is a secret: password, sslpassword, pass, pwd, token, api_key, ...
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key|auth|credential|private", re.IGNORECASE)
#: ``key=value`` anywhere: in a query string (``?a=1&password=x``), a DSN, a log line.
#: The look-behinds start a match only where a word starts: linear time on long text.
_PAIR = re.compile(r"(?<![A-Za-z0-9_.%+-])(?P<key>[A-Za-z0-9_.%+-]+)=(?P<value>[^&\s]*)")
#: A URL in free text: a scheme, ``://`` and everything up to the next blank.
_URL = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://\S*")
_BEARER = re.compile(r"(?P<word>\bBearer\s+)\S+", re.IGNORECASE)
#: SQLAlchemy's ``[SQL: ...]`` (possibly several lines) and ``[parameters: ...]`` (one line).
_SQL = re.compile(
    r"\[SQL: .*?\](?=\s*\[parameters: |\s*\[SQL parameters hidden|\s*\(Background on|\s*\Z)",
    re.DOTALL,
)
_PARAMETERS = re.compile(r"\[parameters: [^\n]*\]")
#: The user-name/password separator, also percent-encoded.
_USER_SEP = re.compile(r":|%3a", re.IGNORECASE)
#: Schemes whose ``user@host`` names a user; to others (``redis://secret@host``, any unknown
#: scheme) a lone user-info may be a password, so it is hidden.
_USER_NAME_SCHEMES = ("postgresql", "postgres", "mysql", "mariadb", "sqlite")


def _decoded(key: str) -> str:
    for _ in range(3):  # %2570assword is %70assword is password
        key, before = unquote_plus(key), key
        if key == before:
            break
    return key


def _mask_pair(match: re.Match[str]) -> str:
    key = match["key"]
    if not match["value"] or not _SECRET_KEY.search(_decoded(key)):
        return match[0]
    return f"{key}={MASK}"


def _mask_pairs(text: str) -> str:
    return _PAIR.sub(_mask_pair, text) if "=" in text else text


def _mask_user_info(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:  # not a URL we can read: hide from the first ':' to the last '@'
        scheme, rest = "", url
    at = rest.rfind("@")
    if at < 0:
        return url
    user_info, host = rest[:at], rest[at:]
    found = _USER_SEP.search(user_info)
    if found is not None:
        user_info = user_info[: found.end()] + MASK
    elif scheme.lower().partition("+")[0] not in _USER_NAME_SCHEMES:
        user_info = MASK
    return f"{scheme}{sep}{user_info}{host}"


def mask_url(url: str) -> str:
    """``postgresql://user:secret@host/db?sslpassword=x`` -> ``postgresql://user:***@host/db?
    sslpassword=***``: the password in the user-info (``:`` or ``%3A``), and every query value
    whose key looks secret (also percent-encoded, ``%70assword``)."""
    return _mask_pairs(_mask_user_info(url))


def _drop_sql(text: str) -> str:
    if "[SQL: " not in text and "[parameters: " not in text:
        return text
    return _PARAMETERS.sub("[parameters omitted]", _SQL.sub("[SQL omitted]", text))


def scrub(text: str) -> str:
    """``text`` with every URL masked (:func:`mask_url`), secret ``key=value`` pairs and
    ``Bearer`` tokens masked, and SQLAlchemy's SQL and bound parameters cut."""
    text = _drop_sql(text)
    if "://" in text:
        text = _URL.sub(lambda match: _mask_user_info(match[0]), text)
    text = _mask_pairs(text)
    if "earer" in text:
        text = _BEARER.sub(lambda match: match["word"] + MASK, text)
    return text
