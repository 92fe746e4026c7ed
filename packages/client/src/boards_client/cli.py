"""``boards-client``: submit a job from the shell and print it as JSON.

    boards-client submit PAYLOAD [--url URL] [--token T] [--wait] [--timeout S] [--delay S]
    boards-client get ID [--url URL] [--token T]
    boards-client health [--url URL] [--token T]

The API token comes from ``--token`` or ``$BOARDS_API_TOKEN`` (better: it stays out of ``ps``);
it is never printed.

Exit codes: 0 done (for ``--wait``: the job succeeded), 1 the job failed, timed out, or the API
answered an error or could not be reached, 2 bad input. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import httpx

from boards_client.client import BoardsClient, BoardsError

PROG = "boards-client"
DEFAULT_URL = "http://localhost:8800"
URL_ENV = "BOARDS_URL"
TOKEN_ENV = "BOARDS_API_TOKEN"  # noqa: S105 (the variable's name, not a token)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad command-line input."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _non_negative_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    value = _non_negative_seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Talk to a boards API from the shell.")
    url_help = f"API base URL (default: ${URL_ENV} or {DEFAULT_URL})"
    token_help = f"API bearer token (default: ${TOKEN_ENV}; none: send no Authorization)"
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    submit = sub.add_parser("submit", help="enqueue a job and print it as JSON")
    submit.add_argument("payload", help="the job's payload text")
    submit.add_argument("--url", help=url_help)
    submit.add_argument("--token", help=token_help)
    submit.add_argument("--wait", action="store_true", help="wait until the job finished")
    submit.add_argument(
        "--delay", type=_non_negative_seconds, default=0.0, help="delay_seconds for the job"
    )
    submit.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=30.0,
        help="seconds --wait waits for the job (default 30)",
    )

    get = sub.add_parser("get", help="print one job as JSON")
    get.add_argument("id", help="the job id")
    get.add_argument("--url", help=url_help)
    get.add_argument("--token", help=token_help)

    health = sub.add_parser("health", help="print /api/v1/system/health as JSON")
    health.add_argument("--url", help=url_help)
    health.add_argument("--token", help=token_help)
    return parser


def _print_json(data: Any) -> None:
    print(json.dumps(data, sort_keys=True))


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace, url: str, token: str | None = None) -> int:
    with BoardsClient(url, token=token) as client:
        if args.command == "health":
            _print_json(client.system_health())
            return EXIT_OK
        if args.command == "get":
            _print_json(client.get_job(args.id).to_dict())
            return EXIT_OK
        job = client.create_job(args.payload, delay_seconds=args.delay)
        if args.wait:
            job = client.wait_for_job(job.id, timeout=args.timeout)
        _print_json(job.to_dict())
        return EXIT_FAILED if job.status == "failed" else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    url = args.url or os.environ.get(URL_ENV) or DEFAULT_URL
    token = args.token or os.environ.get(TOKEN_ENV) or None  # empty counts as unset
    try:
        return run(args, url, token)
    except ValueError as exc:  # a malformed URL or job id
        return _fail(str(exc), EXIT_USAGE)
    except (BoardsError, TimeoutError) as exc:
        return _fail(str(exc), EXIT_FAILED)
    except httpx.HTTPError as exc:
        return _fail(f"cannot reach {url}: {exc.__class__.__name__}: {exc}", EXIT_FAILED)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
