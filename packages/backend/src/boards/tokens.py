"""The API's bearer tokens (``BOARDS_API_TOKENS_FILE``): read, re-read on change, checked.

The file holds one token per line, or ``sha256:<64 hex>``, the SHA-256 digest of a token, so
the cleartext need not be stored; blank lines and ``#`` comments are ignored. Only digests are
kept in memory, and an offered token is hashed and compared with every one of them with
:func:`hmac.compare_digest`: digest against digest, in time that does not depend on where they
differ nor on which token matched. Standard library only: the settings loader reads it too.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from pathlib import Path

logger = logging.getLogger("boards.api")

DIGEST_PREFIX = "sha256:"
#: RFC 6750's b64token: what a client can send after ``Bearer ``.
_TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
#: A shorter cleartext token is refused: it could be guessed.
MIN_TOKEN_LENGTH = 16


class TokenFileError(Exception):
    """The token file cannot be used; the message never holds any of its contents."""


def digest(token: str | bytes) -> bytes:
    raw = token.encode("ascii") if isinstance(token, str) else token
    return hashlib.sha256(raw).digest()


def parse_tokens(text: str) -> frozenset[bytes]:
    """The SHA-256 digests of the tokens in ``text``; :class:`TokenFileError` if none or a line
    is neither a token nor a digest (named by its number, never by its contents)."""
    digests: set[bytes] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(DIGEST_PREFIX):
            hexdigest = line[len(DIGEST_PREFIX) :]
            if not _HEX_DIGEST.fullmatch(hexdigest):
                raise TokenFileError(f"line {number} is not sha256: and 64 hex digits")
            digests.add(bytes.fromhex(hexdigest))
        elif not _TOKEN.fullmatch(line):
            raise TokenFileError(
                f"line {number} is not a token (letters, digits and -._~+/ only) nor a digest"
            )
        elif len(line) < MIN_TOKEN_LENGTH:
            raise TokenFileError(f"line {number} is shorter than {MIN_TOKEN_LENGTH} characters")
        else:
            digests.add(digest(line))
    if not digests:
        raise TokenFileError("holds no token")
    return frozenset(digests)


def read_tokens(path: Path) -> frozenset[bytes]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM some editors write is no token
    except FileNotFoundError:
        raise TokenFileError("no such file") from None
    except IsADirectoryError:
        raise TokenFileError("is a directory, not a file") from None
    except PermissionError:
        raise TokenFileError("cannot be read (permission denied)") from None
    except UnicodeDecodeError:
        raise TokenFileError("is not UTF-8 text") from None
    except OSError as exc:
        raise TokenFileError(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    return parse_tokens(text)


def _stamp(path: Path) -> tuple[int, int, int, int] | None:
    # os.stat follows the symlinks Kubernetes swaps when it updates a mounted Secret.
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class TokenFile:
    """The tokens of one file, re-read whenever its inode, size or mtime changes, so tokens
    rotate without a restart. A change that leaves the file unusable (gone, empty, a bad
    line) is logged once and the tokens read before stay in force."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp = _stamp(path)
        self._digests = read_tokens(path)

    def __len__(self) -> int:
        return len(self._digests)

    def _current(self) -> frozenset[bytes]:
        stamp = _stamp(self.path)
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._digests = read_tokens(self.path)
            except TokenFileError as exc:
                logger.error(
                    "API tokens: %s %s; the %d tokens read before stay in force",
                    self.path,
                    exc,
                    len(self._digests),
                )
            else:
                logger.info("API tokens: re-read %s, %d tokens", self.path, len(self._digests))
        return self._digests

    def accepts(self, token: bytes) -> bool:
        """Whether ``token`` is one of the file's, compared with every digest (no early exit)."""
        offered = digest(token)
        found = False
        for known in self._current():
            found |= hmac.compare_digest(offered, known)
        return found
