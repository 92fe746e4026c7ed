#!/usr/bin/env python3
"""Fail unless every needed job succeeded or was skipped: one stable check for branch protection.

The workflow passes ``NEEDS: ${{ toJSON(needs) }}`` through the environment (never into the
script text). A matrix job with no members to check is ``skipped``, which counts as passing;
``failure`` and ``cancelled`` do not.
"""

from __future__ import annotations

import json
import os
import sys

PASSING = frozenset({"success", "skipped"})


def failures(needs: object) -> list[str]:
    if not isinstance(needs, dict) or not needs:
        return ["<no needed jobs in NEEDS>"]
    bad = []
    for job, info in sorted(needs.items()):
        result = info.get("result") if isinstance(info, dict) else None
        if result not in PASSING:
            bad.append(f"{job}: {result}")
    return bad


def main() -> int:
    try:
        needs = json.loads(os.environ.get("NEEDS", ""))
    except ValueError:
        print("require-success: error: NEEDS is not JSON", file=sys.stderr)
        return 2
    bad = failures(needs)
    if bad:
        print(f"require-success: not passing: {', '.join(bad)}", file=sys.stderr)
        return 1
    print(f"require-success: all passing: {', '.join(sorted(needs))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
