"""Reading the workflows: the YAML as GitHub reads it, and its jobs and steps."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = ROOT / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOWS_DIR.glob("*.yml"))


def load(text: str) -> dict[Any, Any]:
    data = yaml.safe_load(text)
    assert isinstance(data, dict), "a workflow is a mapping"
    # YAML 1.1 reads the key `on` as True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def jobs(wf: dict[Any, Any]) -> dict[str, dict[str, Any]]:
    return wf.get("jobs") or {}


def job_steps(wf: dict[Any, Any]) -> Iterator[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """Each job: its id, the job and its steps ([] for a job that calls a reusable workflow)."""
    for job_id, job in jobs(wf).items():
        yield job_id, job, job.get("steps") or []


def steps(wf: dict[Any, Any]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    for job_id, job in jobs(wf).items():
        for index, step in enumerate(job.get("steps") or []):
            yield job_id, index, step


def uses(step: dict[str, Any], action: str) -> bool:
    """Whether the step runs `action` (owner/name[/path]) at any ref."""
    return str(step.get("uses", "")).startswith(action + "@")


def lines(value: object) -> list[str]:
    """A multi-line input's non-empty lines, stripped."""
    return [line.strip() for line in str(value or "").splitlines() if line.strip()]


def assert_reports(violations: Iterable[str], *messages: str) -> None:
    """Each message is part of some violation; a failure shows all that were found."""
    text = "\n".join(violations)
    missing = [message for message in messages if message not in text]
    assert not missing, f"{missing} not in:\n{text}"
