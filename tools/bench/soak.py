"""`just soak`: the compose stack of `just bench` under a steady load for many minutes, with a
short job retention, sampled every few seconds: does anything grow that should stay flat?

Home-made because no tool here does both halves: wrk (Debian) is closed-loop and reports once at
the end, wrk2's open loop is not packaged, and a load tool (Locust) would still need this
sampler beside it; the sampling itself is the field's clients (the docker SDK, psycopg, redis).

* load: an open-loop `POST /api/v1/jobs` at a fixed rate (default 170/s, about half the worker's
  measured drain rate) from this host; of every 20 jobs 2 fail (`fail:` payload), 1 waits 1 s
  in the worker (`delay_seconds`), the rest succeed; at most `--in-flight` requests at once;
* every `--interval` seconds: the API's and the worker's RSS, POST p50/p99 over the interval,
  the queue (Redis) and the oldest queued job's age (the API's /metrics), the jobs table (live
  rows, dead tuples, size on disk), Redis memory, PostgreSQL connections, jobs pruned;
* at the end: a markdown table of the samples, the checks with their goals (tools/bench/report.py),
  the series as JSON and a chart with one panel per series (tools/bench/chart.py).

Nothing here asserts: the tool prints figures, the test (tests/bench) checks that it works.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import re
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chart
import docker
import httpx
import psycopg
import redis
from report import Goal, Table, machine, today
from runtime import ROOT, Stack, run

PROJECT = "boards-soak"
OVERRIDE = Path(__file__).with_name("soak.compose.yaml")
QUEUE_KEY = "dramatiq:boards-jobs"  # dramatiq's default namespace, boards.queue.QUEUE_NAME
#: Seconds the pruner may lag behind the retention: its reconciler pass, a batch or two.
PRUNE_SLACK = 60.0
MB = 1024 * 1024

#: The sampled series: JSON key -> (table header, unit, chart panel). The test checks that the
#: printed table names every header.
SERIES: dict[str, tuple[str, str, str]] = {
    "post_per_s": ("POST answered", "req/s", "POST answered (2xx)"),
    "api_rss_mb": ("API RSS", "MB", "API RSS"),
    "worker_rss_mb": ("worker RSS", "MB", "worker RSS"),
    "post_p50_ms": ("POST p50", "ms", "POST p50"),
    "post_p99_ms": ("POST p99", "ms", "POST p99"),
    "queue_depth": ("queue", "jobs", "queue depth (Redis)"),
    "oldest_queued_s": ("oldest queued", "s", "oldest queued job"),
    "live_rows": ("live rows", "rows", "jobs table: live rows"),
    "dead_rows": ("dead rows", "rows", "jobs table: dead tuples"),
    "table_mb": ("table size", "MB", "jobs table: size on disk"),
    "redis_mb": ("Redis memory", "MB", "Redis used_memory"),
    "pg_connections": ("PG connections", "", "PostgreSQL connections"),
}


def log(line: str) -> None:
    print(f"soak: {line}", file=sys.stderr, flush=True)


# -- the stack -----------------------------------------------------------------------------------


class SoakStack(Stack):
    """`just bench`'s stack under its own project name, with tools/bench/soak.compose.yaml
    (PostgreSQL, Redis and the worker's metrics on 127.0.0.1) and the retention set."""

    def __init__(self, port: int, image: str, project: str, retention: int) -> None:
        super().__init__(port, image)
        self.project = project
        self.env["BOARDS_JOB_RETENTION"] = str(retention)

    def compose(self, *args: str, capture: bool = False) -> str:
        files = ("-f", "compose.yaml", "-f", str(OVERRIDE))
        return run(
            "docker", "compose", "-p", self.project, *files, *args, env=self.env, capture=capture
        )

    def up(self) -> None:
        super().up()
        # --port 0: the engine picked the API's port.
        self.url = f"http://{self.published('api', 8800)}"

    def published(self, service: str, port: int) -> str:
        return self.compose("port", service, str(port), capture=True).strip()

    def container(self, service: str) -> str:
        return self.compose("ps", "--quiet", service, capture=True).strip()


# -- the load ------------------------------------------------------------------------------------


@dataclass
class Load:
    """Open loop: request i is due at start + i / rate whatever the answers before it did; when
    `in_flight` requests are still open, a due request is skipped and counted. Threads and one
    shared httpx.Client: a quarter of the CPU per request of httpx's asyncio client here."""

    url: str
    rate: float
    seconds: float
    in_flight: int
    timeout: float = 10.0
    #: (when it was answered, monotonic; latency in ms) of every 2xx answer.
    answered: list[tuple[float, float]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        return thread

    @staticmethod
    def body(index: int) -> dict[str, Any]:
        kind = index % 20
        if kind < 2:
            return {"payload": f"fail: soak {index}"}
        if kind == 2:
            return {"payload": f"soak {index}", "delay_seconds": 1.0}
        return {"payload": f"soak {index}"}

    def _error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] += 1

    def _post(self, client: httpx.Client, index: int, slots: threading.Semaphore) -> None:
        try:
            began = time.monotonic()
            response = client.post("/api/v1/jobs", json=self.body(index))
            done = time.monotonic()
            if response.is_success:
                self.answered.append((done, (done - began) * 1000))
            else:
                self._error(f"HTTP {response.status_code}")
        except httpx.TimeoutException:
            self._error("timeout")
        except httpx.TransportError as error:
            self._error(type(error).__name__)
        finally:
            slots.release()

    def _run(self) -> None:
        slots = threading.Semaphore(self.in_flight)
        # Idle connections dropped before uvicorn drops them (5 s): no POST races a close.
        limits = httpx.Limits(max_connections=self.in_flight, keepalive_expiry=2)
        with (
            httpx.Client(base_url=self.url, timeout=self.timeout, limits=limits) as client,
            concurrent.futures.ThreadPoolExecutor(self.in_flight) as pool,
        ):
            start = time.monotonic()
            for index in range(int(self.rate * self.seconds)):
                time.sleep(max(0.0, start + index / self.rate - time.monotonic()))
                if not slots.acquire(blocking=False):
                    self._error("skipped: in-flight bound")
                    continue
                self.sent += 1
                pool.submit(self._post, client, index, slots)


# -- the samples ---------------------------------------------------------------------------------


class Sampler:
    """One sample: two `docker top` calls (the engine's API, no process here), one SQL query on
    a connection kept open, one Redis pipeline, two HTTP GETs of metrics."""

    # Connections: every client's but this one's; the roles' apart by their application_name.
    SQL = """
        SELECT s.n_live_tup, s.n_dead_tup, pg_total_relation_size('jobs'), c.total, c.api, c.worker
          FROM pg_stat_user_tables AS s,
               (SELECT count(*) AS total,
                       count(*) FILTER (WHERE application_name = 'boards-api') AS api,
                       count(*) FILTER (WHERE application_name = 'boards-worker') AS worker
                  FROM pg_stat_activity
                 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()) AS c
         WHERE s.relname = 'jobs'
    """

    def __init__(self, stack: SoakStack) -> None:
        self.docker = docker.from_env()
        self.api = self.docker.containers.get(stack.container("api"))
        self.worker = self.docker.containers.get(stack.container("worker"))
        pg_host, pg_port = stack.published("postgres", 5432).rsplit(":", 1)
        self.pg = psycopg.connect(
            host=pg_host,
            port=int(pg_port),
            user="boards",
            password="boards",  # noqa: S106  compose.yaml's, on 127.0.0.1 only
            dbname="boards",
            application_name="boards-soak",
            autocommit=True,
        )
        redis_host, redis_port = stack.published("redis", 6379).rsplit(":", 1)
        self.redis = redis.Redis(host=redis_host, port=int(redis_port), socket_timeout=5)
        self.http = httpx.Client(timeout=5)
        self.api_metrics = f"{stack.url}/metrics"
        self.worker_metrics = f"http://{stack.published('worker', 9191)}/metrics"

    def close(self) -> None:
        self.pg.close()
        self.redis.close()
        self.http.close()
        self.docker.close()

    @staticmethod
    def rss_mb(container: Any) -> float:
        """The sum of the RSS of the role's processes, as `ps` on the engine's host sees them (a
        forked worker's shared pages count once per process); the image's health check, a
        short-lived process every few seconds, left out."""
        top = container.top(ps_args="-o pid,rss,args")
        rss, args = top["Titles"].index("RSS"), top["Titles"].index("COMMAND")
        return (
            sum(int(row[rss]) for row in top["Processes"] if "healthcheck" not in row[args])
            * 1024
            / MB
        )

    @staticmethod
    def metric(text: str, name: str) -> float | None:
        found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else None

    def sample(self) -> dict[str, Any]:
        live, dead, size, connections, api_conns, worker_conns = (
            self.pg.execute(self.SQL).fetchone() or (0,) * 6
        )
        pipe = self.redis.pipeline(transaction=False)
        pipe.llen(QUEUE_KEY)
        pipe.info("memory")
        depth, memory = pipe.execute()
        api = self.http.get(self.api_metrics).text
        jobs = dict(re.findall(r'^boards_jobs\{status="(\w+)"\} (\S+)$', api, re.MULTILINE))
        try:
            pruned = self.metric(
                self.http.get(self.worker_metrics).text, "boards_jobs_pruned_total"
            )
        except httpx.HTTPError:
            pruned = None  # the exposition is not up yet, or its port is off
        return {
            "api_rss_mb": self.rss_mb(self.api),
            "worker_rss_mb": self.rss_mb(self.worker),
            "queue_depth": int(depth),
            "oldest_queued_s": self.metric(api, "boards_oldest_queued_job_age_seconds"),
            "jobs_by_status": {status: int(float(n)) for status, n in jobs.items()},
            "live_rows": int(live),
            "dead_rows": int(dead),
            "table_mb": int(size) / MB,
            "redis_mb": int(memory["used_memory"]) / MB,
            "pg_connections": int(connections),
            "pg_connections_api": int(api_conns),
            "pg_connections_worker": int(worker_conns),
            "pruned_total": pruned,
        }


def latency(window: list[float]) -> dict[str, float | None]:
    if len(window) < 2:
        return {
            "post_p50_ms": window[0] if window else None,
            "post_p99_ms": window[0] if window else None,
        }
    quantiles = statistics.quantiles(window, n=100, method="inclusive")
    return {"post_p50_ms": statistics.median(window), "post_p99_ms": quantiles[98]}


def soak(stack: SoakStack, args: argparse.Namespace) -> dict[str, Any]:
    sampler = Sampler(stack)
    load = Load(stack.url, args.rate, args.minutes * 60, args.in_flight)
    samples: list[dict[str, Any]] = []
    try:
        began = time.monotonic()
        thread = load.start()
        seen = 0
        for k in range(1, int(args.minutes * 60 / args.interval) + 1):
            time.sleep(max(0.0, began + k * args.interval - time.monotonic()))
            at = time.monotonic()
            answered = load.answered[seen:]
            seen += len(answered)
            sample = {"t_s": round(at - began, 1), "post_per_s": len(answered) / args.interval}
            sample |= latency([ms for _, ms in answered])
            sample |= sampler.sample()
            sample["errors"] = sum(load.errors.values())
            samples.append(sample)
            if k == 1 or k % max(1, round(60 / args.interval)) == 0:
                log(
                    f"{sample['t_s']:.0f} s: {len(answered)} answered, p99 "
                    f"{sample['post_p99_ms'] or 0:.0f} ms, {sample['live_rows']} rows, "
                    f"{sample['errors']} errors"
                )
        thread.join(timeout=load.timeout + 5)
    finally:
        sampler.close()
    return {
        "rate": args.rate,
        "minutes": args.minutes,
        "interval_s": args.interval,
        "retention_s": args.retention,
        "in_flight": args.in_flight,
        "sent": load.sent,
        "accepted": len(load.answered),
        "errors": dict(load.errors),
        "series": {key: {"label": label, "unit": unit} for key, (label, unit, _) in SERIES.items()},
        "samples": samples,
    }


# -- report --------------------------------------------------------------------------------------


def windows(seconds: float) -> tuple[float, float]:
    """Warm-up and comparison window: 5 minutes each from a 30-minute run; shorter runs scale
    them down (a quarter of the run, half of what is left) so they still print every check."""
    warm = min(300.0, seconds / 4)
    return warm, min(300.0, (seconds - warm) / 2)


def clock(seconds: float) -> str:
    """A time into the run, as m:ss."""
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def between(samples: list[dict[str, Any]], key: str, low: float, high: float) -> list[float]:
    return [s[key] for s in samples if low <= s["t_s"] <= high and s[key] is not None]


def growth(samples: list[dict[str, Any]], key: str, since: float) -> float | None:
    """% change from the first sample at or after ``since`` to the last one."""
    values = between(samples, key, since, float("inf"))
    return (values[-1] / values[0] - 1) * 100 if len(values) > 1 and values[0] else None


def checks(results: dict[str, Any]) -> Table:
    samples, seconds = results["samples"], results["minutes"] * 60
    warm, span = windows(seconds)
    out = Table(["measured"])
    memory = f"memory: growth from {clock(warm)} to the end"
    for key, who in (("api_rss_mb", "API"), ("worker_rss_mb", "worker")):
        out.add(
            f"{who} RSS growth", growth(samples, key, warm), "%", goal=Goal(10.0), section=memory
        )
    early = between(samples, "post_p99_ms", warm, warm + span)
    late = between(samples, "post_p99_ms", seconds - span, seconds)
    drift = (
        (statistics.median(late) / statistics.median(early) - 1) * 100 if early and late else None
    )
    latency_ = "latency"
    out.add(
        f"POST p99 drift: median of {clock(seconds - span)}-{clock(seconds)} against "
        f"{clock(warm)}-{clock(warm + span)}",
        drift,
        "%",
        goal=Goal(20.0),
        section=latency_,
    )
    out.add(
        "POST p99, median over the run",
        statistics.median(between(samples, "post_p99_ms", 0, seconds) or [0]),
        "ms",
        section=latency_,
    )
    table = "jobs table"
    bound = results["rate"] * (results["retention_s"] + PRUNE_SLACK)
    rows = between(samples, "live_rows", 0, seconds)
    out.add(
        f"live rows, max (bound: rate x (retention + {PRUNE_SLACK:g} s))",
        max(rows, default=None),
        "rows",
        digits=0,
        goal=Goal(bound),
        section=table,
    )
    # The table fills for one retention; from then on, what is deleted makes room for what comes.
    full = max(warm, results["retention_s"] + PRUNE_SLACK)
    out.add(
        f"size growth from {clock(full)} (table full) to the end",
        growth(samples, "table_mb", full) if full < seconds else None,
        "%",
        goal=Goal(10.0),
        section=table,
    )
    pruned = samples[-1].get("pruned_total")  # None: a worker without the counter
    out.add("jobs pruned by the retention", pruned, "jobs", digits=0, section=table)
    connections = between(samples, "pg_connections", warm, seconds)
    out.add(
        "PostgreSQL connections: max - min after the warm-up",
        max(connections) - min(connections) if connections else None,
        digits=0,
        goal=Goal(2),
        section="connections",
    )
    load = "load"
    out.add("POST sent per second", results["sent"] / seconds, "req/s", digits=0, section=load)
    for kind, count in sorted(results["errors"].items()) or [("errors", 0)]:
        out.add(f"{kind}", count, digits=0, goal=Goal(0), section="errors")
    return out


def samples_table(results: dict[str, Any]) -> str:
    """One row per sample; past 40 samples one a minute, the first and the last kept."""
    samples = results["samples"]
    rows = samples
    if len(samples) > 40:
        every = max(1, round(60 / results["interval_s"]))
        rows = [s for i, s in enumerate(samples) if i == 0 or (i + 1) % every == 0]
        rows += [] if rows[-1] is samples[-1] else [samples[-1]]
    head = ["t (s)"] + [
        f"{label} ({unit})" if unit else label for label, unit, _ in SERIES.values()
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + " ---: |" * len(head)]
    for s in rows:
        cells = [f"{s['t_s']:.0f}"]
        for key in SERIES:
            value = s[key]
            cells.append(
                "—" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def draw(results: dict[str, Any], out: Path, title: str, caption: str) -> Path:
    samples = results["samples"]
    panels = {panel: (unit, [s[key] for s in samples]) for key, (_, unit, panel) in SERIES.items()}
    bound = results["rate"] * (results["retention_s"] + PRUNE_SLACK)
    minutes = [s["t_s"] / 60 for s in samples]
    return chart.series_chart(minutes, panels, out, title, caption, {SERIES["live_rows"][2]: bound})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=170, help="POST per second (open loop)")
    parser.add_argument("--interval", type=float, default=10, help="seconds between samples")
    parser.add_argument("--retention", type=int, default=120, help="BOARDS_JOB_RETENTION, s")
    parser.add_argument("--in-flight", type=int, default=64, help="most requests open at once")
    parser.add_argument("--image", default="boards-backend:soak")
    parser.add_argument("--port", type=int, default=8812, help="the API's; 0: any free one")
    parser.add_argument("--project", default=PROJECT, help="compose project name")
    parser.add_argument("--out", type=Path, help="the JSON (default .cache/bench/soak.json)")
    parser.add_argument("--report", type=Path, help="re-print and re-draw a saved JSON, no run")
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    parser.add_argument("--no-build", action="store_true", help="use --image as it is")
    parser.add_argument(
        "--write-docs", action="store_true", help="JSON and chart to docs/performance/soak.*"
    )
    args = parser.parse_args()
    if args.minutes <= 0 or args.rate <= 0 or args.interval <= 0 or args.in_flight <= 0:
        parser.error("--minutes, --rate, --interval and --in-flight must be positive")  # exit 2
    if args.minutes * 60 < 5 * args.interval:
        parser.error("--minutes must hold at least 5 samples of --interval")
    out: Path = args.out or ROOT / (
        "docs/performance/soak.json" if args.write_docs else ".cache/bench/soak.json"
    )
    if args.report is not None:
        out = args.out or (out if args.write_docs else args.report)
        results = json.loads(args.report.read_text())
    else:
        results = measure(args)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
    title = (
        f"Soak: {results['minutes']:g} min at {results['rate']:g} POST/s, "
        f"retention {results['retention_s']} s, compose stack"
    )
    caption = f"{results['date']}, {results['machine']} before, {results['machine_after']} after"
    report = checks(results)
    print(f"{title}, {caption}\n\n{samples_table(results)}\n\n{report.markdown()}")
    png = draw(results, out.with_suffix(".png"), title, caption)
    log(f"figures in {args.report or out}, chart in {png}")
    return 0


def measure(args: argparse.Namespace) -> dict[str, Any]:
    if not args.no_build:
        run("tools/image/build.sh", "--tag", args.image)
    stack = SoakStack(args.port, args.image, args.project, args.retention)
    log(f"starting the stack ({args.project})")
    stack.up()
    results: dict[str, Any] = {"date": today(), "machine": machine(), "image": args.image}
    try:
        log(f"{args.minutes:g} min at {args.rate:g} POST/s, retention {args.retention} s")
        results |= soak(stack, args)
    finally:
        if not args.keep:
            stack.down()
    results["machine_after"] = machine()
    return results


if __name__ == "__main__":
    sys.exit(main())
