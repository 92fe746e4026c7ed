"""What a step script hands back to its workflow: ``KEY=VALUE`` outputs and a one-line error."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping


def write(out: Mapping[str, str]) -> None:
    """Append the outputs to the step's ``GITHUB_OUTPUT`` file; outside Actions, nothing."""
    path = os.environ.get("GITHUB_OUTPUT")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.writelines(f"{key}={value}\n" for key, value in out.items())


def fail(name: str, message: str) -> int:
    """An annotation on the run and one line on stderr; the exit code for it."""
    print(f"::error title={name.replace('-', ' ')}::{message}")
    print(f"{name}: error: {message}", file=sys.stderr)
    return 1
