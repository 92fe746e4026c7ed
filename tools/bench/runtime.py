"""`just bench`: the runtime benchmark against the compose stack (API, one worker with its
default settings, PostgreSQL, Redis), all on this machine.

Prints a markdown table (tools/bench/report.py), writes a JSON file of the figures and a PNG
chart (tools/bench/chart.py; docs/performance/runtime.png with --write-docs):

* throughput: `wrk` at 32 connections on `GET /health` (the framework's ceiling) and on
  `POST /api/v1/jobs` (tools/bench/post-job.lua), the ratio of the two, p50/p99, errors;
* round trip: N sequential jobs, POST to `succeeded`, p50/p99;
* drain: 1000 jobs from 32 concurrent clients; when the last POST returned and when the last job
  became final; jobs per second; PostgreSQL transactions and row writes per job.

Nothing here asserts: benchmarks print figures, tests check behaviour.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import chart
import httpx
from report import Goal, Table, machine, today

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "boards-bench"
WRK_SCRIPT = Path(__file__).with_name("post-job.lua")


def log(line: str) -> None:
    print(f"bench: {line}", file=sys.stderr, flush=True)


def run(*argv: str, env: dict[str, str] | None = None, capture: bool = False) -> str:
    result = subprocess.run(argv, cwd=ROOT, env=env, check=True, text=True, capture_output=capture)
    return result.stdout if capture else ""


# -- the stack -----------------------------------------------------------------------------------


class Stack:
    def __init__(self, port: int, image: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = dict(os.environ, BOARDS_IMAGE=image, BOARDS_API_PORT=str(port))
        for kind in ("postgres", "redis"):
            self.env[f"BOARDS_{kind.upper()}_IMAGE"] = run(
                "tools/standins/resolve.sh", kind, capture=True
            ).strip()

    def compose(self, *args: str, capture: bool = False) -> str:
        return run("docker", "compose", "-p", PROJECT, *args, env=self.env, capture=capture)

    def up(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans")
        self.compose("up", "--detach", "--no-build", "--wait", "--wait-timeout", "180")

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans")

    def psql(self, sql: str) -> str:
        return self.compose(
            "exec",
            "-T",
            "postgres",
            "psql",
            "-U",
            "boards",
            "-d",
            "boards",
            "-At",
            "-c",
            sql,
            capture=True,
        ).strip()

    def db_counters(self) -> tuple[int, int]:
        """Committed transactions and rows written (inserted + updated) in the boards database."""
        row = self.psql(
            "SELECT xact_commit, tup_inserted + tup_updated FROM pg_stat_database"
            " WHERE datname = 'boards'"
        )
        commits, writes = row.split("|")
        return int(commits), int(writes)

    def unfinished(self) -> int:
        """Jobs not final yet, from the API's ``boards_jobs`` gauge: one HTTP GET, where a
        ``compose exec psql`` every 50 ms would take more CPU than the worker being measured."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        counts = re.findall(r'^boards_jobs\{status="(\w+)"\} (\S+)$', text, re.MULTILINE)
        return sum(int(float(n)) for status, n in counts if status not in ("succeeded", "failed"))


# -- measurements --------------------------------------------------------------------------------


def wrk(url: str, seconds: int, connections: int, script: Path | None = None) -> dict[str, Any]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if script is not None:
        argv += ["-s", str(script)]
    out = run(*argv, url, capture=True)

    def latency(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket:
        errors += sum(int(n) for n in socket.groups())
    return {"rps": rps, "p50_ms": latency("50"), "p99_ms": latency("99"), "errors": errors}


def wait_final(client: httpx.Client, job_id: str, timeout: float = 30) -> str:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        status = client.get(f"/api/v1/jobs/{job_id}").json()["status"]
        if status in ("succeeded", "failed"):
            return str(status)
        time.sleep(0.001)
    raise TimeoutError(job_id)


def round_trip(stack: Stack, count: int) -> dict[str, Any]:
    times: list[float] = []
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        for i in range(count):
            began = time.perf_counter()
            job_id = client.post("/api/v1/jobs", json={"payload": f"rt {i}"}).json()["id"]
            wait_final(client, job_id)
            times.append((time.perf_counter() - began) * 1000)
    quantiles = statistics.quantiles(times, n=100)
    # The same jobs as the service saw them, from the row accepted to the row final: without the
    # client's POST and the polling that observes the end (which costs the API CPU too).
    server = stack.psql(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),"
        " percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) FROM"
        " (SELECT extract(epoch FROM finished_at - created_at) * 1000 AS ms"
        "  FROM jobs WHERE payload LIKE 'rt %') AS t"
    ).split("|")
    return {
        "jobs": count,
        "p50_ms": statistics.median(times),
        "p99_ms": quantiles[98],
        "server_p50_ms": float(server[0]),
        "server_p99_ms": float(server[1]),
    }


def drain(stack: Stack, jobs: int, clients: int) -> dict[str, Any]:
    commits_before, writes_before = stack.db_counters()
    began = time.perf_counter()

    def submit(index: int) -> int:
        with httpx.Client(base_url=stack.url, timeout=30) as client:
            sent = 0
            for n in range(index, jobs, clients):
                response = client.post("/api/v1/jobs", json={"payload": f"drain {n}"})
                sent += response.status_code == 202
            return sent

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        accepted = sum(pool.map(submit, range(clients)))
    submitted = time.perf_counter() - began
    while stack.unfinished():
        time.sleep(0.05)
    finished = time.perf_counter() - began
    commits_after, writes_after = stack.db_counters()
    return {
        "jobs": jobs,
        "accepted": accepted,
        "submit_s": submitted,
        "final_s": finished,
        "ratio": finished / submitted,
        "jobs_per_s": jobs / finished,
        # Both the API's and the worker's transactions, per job (probes and leases included).
        "commits_per_job": (commits_after - commits_before) / jobs,
        "row_writes_per_job": (writes_after - writes_before) / jobs,
    }


# -- report --------------------------------------------------------------------------------------


def table(results: dict[str, Any]) -> Table:
    health, post = results["health"], results["post"]
    rt, dr = results["round_trip"], results["drain"]
    out = Table(["measured"])
    wrk_ = "throughput, wrk at 32 connections"
    out.add("`GET /health` (the ceiling)", health["rps"], "req/s", digits=0, section=wrk_)
    out.add("`POST /api/v1/jobs`", post["rps"], "req/s", digits=0, section=wrk_)
    ratios = "ratios"
    out.add(
        "POST / health throughput",
        post["rps"] / health["rps"],
        "x",
        digits=2,
        goal=Goal(0.4, at_most=False),
        section=ratios,
    )
    out.add(
        f"drain: last job final / last POST ({dr['jobs']} jobs, 32 clients)",
        dr["ratio"],
        "x",
        digits=2,
        goal=Goal(1.25),
        section=ratios,
    )
    latency = "latency"
    out.add("`GET /health` p50", health["p50_ms"], "ms", section=latency)
    out.add("`GET /health` p99", health["p99_ms"], "ms", section=latency)
    out.add("`POST /api/v1/jobs` p50", post["p50_ms"], "ms", section=latency)
    out.add("`POST /api/v1/jobs` p99", post["p99_ms"], "ms", goal=Goal(100.0), section=latency)
    for pct, limit in (("p50", 20.0), ("p99", 60.0)):
        label = f"round trip {pct} ({rt['jobs']} sequential jobs)"
        out.add(label, rt[f"{pct}_ms"], "ms", goal=Goal(limit), section=latency)
    if "server_p50_ms" in rt:  # runs saved before this figure existed have none
        server = "round trip, service side (row accepted to row final)"
        out.add(f"{server} p50", rt["server_p50_ms"], "ms", section=latency)
        out.add(f"{server} p99", rt["server_p99_ms"], "ms", section=latency)
    drain_ = "drain"
    out.add("drain: last POST returned", dr["submit_s"], "s", section=drain_)
    out.add("drain: last job final", dr["final_s"], "s", section=drain_)
    out.add(
        "worker: jobs per second (one container, defaults)",
        dr["jobs_per_s"],
        "jobs/s",
        digits=0,
        section="worker",
    )
    per_job = "PostgreSQL per job"
    out.add("transactions per job (API and worker)", dr["commits_per_job"], section=per_job)
    out.add("row writes per job", dr["row_writes_per_job"], section=per_job)
    errors = "errors"
    out.add("`GET /health` errors", health["errors"], digits=0, goal=Goal(0), section=errors)
    out.add("`POST /api/v1/jobs` errors", post["errors"], digits=0, goal=Goal(0), section=errors)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default="boards-backend:bench")
    parser.add_argument("--port", type=int, default=8811)
    parser.add_argument("--seconds", type=int, default=15, help="per wrk run")
    parser.add_argument("--round-trips", type=int, default=200)
    parser.add_argument("--drain-jobs", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / ".cache/bench/runtime.json")
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    parser.add_argument("--no-build", action="store_true", help="use --image as it is")
    parser.add_argument(
        "--write-docs", action="store_true", help="chart to docs/performance/, not .cache/bench/"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        if os.geteuid() != 0:
            log("wrk is missing: apt-get install wrk")
            return 2
        log("installing wrk (Debian)")
        run("apt-get", "install", "-y", "-qq", "wrk", capture=True)
    if not args.no_build:
        run("tools/image/build.sh", "--tag", args.image)
    stack = Stack(args.port, args.image)
    log(f"starting the stack ({PROJECT}) on {stack.url}")
    stack.up()
    try:
        results: dict[str, Any] = {"date": today(), "machine": machine()}
        log("wrk: GET /health")
        results["health"] = wrk(f"{stack.url}/health", args.seconds, 32)
        log("wrk: POST /api/v1/jobs")
        results["post"] = wrk(f"{stack.url}/api/v1/jobs", args.seconds, 32, WRK_SCRIPT)
        while stack.unfinished():  # let the worker catch up before timing single jobs
            time.sleep(0.2)
        log(f"round trip: {args.round_trips} sequential jobs")
        results["round_trip"] = round_trip(stack, args.round_trips)
        log(f"drain: {args.drain_jobs} jobs from 32 clients")
        results["drain"] = drain(stack, args.drain_jobs, 32)
    finally:
        if not args.keep:
            stack.down()
    results["machine_after"] = machine()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    report = table(results)
    title = "Runtime benchmark: compose stack, API + one worker + PostgreSQL + Redis"
    caption = f"{results['date']}, {results['machine']} before, {results['machine_after']} after"
    print(f"{title}, {caption}\n\n{report.markdown()}")
    charts = ROOT / ("docs/performance" if args.write_docs else ".cache/bench")
    png = chart.bar_chart(report, charts / "runtime.png", title, caption)
    log(f"figures written to {args.out}, chart to {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
