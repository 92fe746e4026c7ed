"""`just soak` for one minute on the image the suite builds: it runs, samples every series often
enough and with sane values, prints them and draws them. What a real run measured is in
docs/performance.md; here nothing about the figures' size is judged."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "boards-soak-test"  # not `just soak`'s own, so a soak by hand can run beside the suite


def just_soak(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["just", "soak", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=os.environ,
    )


@pytest.fixture(scope="module")
def one_minute(
    backend_image: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], str, Path]:
    out = tmp_path_factory.mktemp("soak") / "soak.json"
    # A third of the default rate: CI shares its cores; the tool is the same at any rate.
    args = ("--minutes", "1", "--rate", "50", "--retention", "60", "--port", "0")
    try:
        run = just_soak(
            *args,
            *("--project", PROJECT, "--no-build", "--image", backend_image, "--out", str(out)),
            timeout=240,
        )
    finally:  # the tool stops its stack itself; this is for a run killed by the timeout
        subprocess.run(
            ["docker", "compose", "-p", PROJECT, "down", "--volumes", "--remove-orphans"],
            capture_output=True,
            check=False,
        )
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads(out.read_text()), run.stdout, out


@pytest.mark.image
def test_every_series_is_sampled_with_sane_values(
    one_minute: tuple[dict[str, Any], str, Path],
) -> None:
    results, _, _ = one_minute
    samples = results["samples"]
    for key in results["series"]:
        values = [s[key] for s in samples if s.get(key) is not None]
        assert len(values) >= 5, f"{key}: {len(values)} samples"
    for s in samples:
        assert s["api_rss_mb"] > 0 and s["worker_rss_mb"] > 0, s
        assert s["post_p99_ms"] >= s["post_p50_ms"] > 0, s
        assert s["post_per_s"] > 0, s
        assert s["live_rows"] >= 0 and s["dead_rows"] >= 0 and s["table_mb"] > 0, s
        assert s["queue_depth"] >= 0 and s["oldest_queued_s"] >= 0, s
        assert s["pg_connections"] > 0, s
        assert s["redis_mb"] > 0, s
    assert results["accepted"] > 0
    assert samples[-1]["live_rows"] > 0  # the stats see the jobs the load created


@pytest.mark.image
def test_the_table_names_every_series_and_every_check(
    one_minute: tuple[dict[str, Any], str, Path],
) -> None:
    results, printed, out = one_minute
    for series in results["series"].values():
        assert series["label"] in printed, series
    for check in ("API RSS growth", "worker RSS growth", "POST p99 drift", "live rows, max"):
        assert check in printed
    assert "size growth" in printed and "connections: max - min" in printed
    assert out.with_suffix(".png").stat().st_size > 0


def test_a_run_too_short_for_five_samples_exits_2_with_one_line() -> None:
    run = just_soak("--minutes", "0.5", "--no-build")  # 30 s at the default 10 s interval
    assert run.returncode == 2, run.stderr
    assert "soak.py: error: --minutes must hold at least 5 samples" in run.stderr
    assert "Traceback" not in run.stderr
