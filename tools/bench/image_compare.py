"""`just image-compare`: the project's image beside two references, built from this workspace
with the same code, the same uv.lock and the same base, measured in one run, interleaved.

* project: tools/image/build.sh (packages/backend/Dockerfile);
* pip: tools/bench/reference/pip.Dockerfile, a naive single-stage `pip install`;
* uv-example: tools/bench/reference/uv-example.Dockerfile, astral's uv-docker-example multistage.

Per image and round: the first build (cold with --cold: every build cache pruned first, the uv
cache mounts included), a no-change re-build (for the project: `just image`), a code-change
re-build (a line appended to boards/__init__.py in a copy of the workspace), size and size over
the base; `docker run` of the API (SQLite) to the first `/health` 200, to
`/api/v1/system/health` 200 and to Docker `healthy`; the floor (`python -c pass` in the same
image); the health check's CPU per run; the API's idle RSS; `docker stop`. For the project also
the worker: `docker run` to its first job done (Redis on a private network), `docker stop` idle
and with a 20 s job in flight. At the end of each round, the API of every image, started together
and left alone once healthy: its CPU over --idle-window seconds (default 60; 0 skips it), its own
HEALTHCHECK included, from the engine's cgroup counter.

Prints the medians as a markdown table, writes .cache/bench/image-compare.json and a PNG chart
(docs/performance/image-compare.png with --write-docs). Nothing here asserts.

--cold runs `docker builder prune --all --force`: it empties the BuildKit cache of everyone who
shares the engine. Only with nothing else building.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chart
import docker
from report import Goal, Table, machine, today

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path(__file__).with_name("reference")
CONSTRAINTS = Path(".cache/bench/pip-constraints.txt")  # inside a build context
NAMES = ("pip", "uv-example", "project")
TITLES = {"pip": "naive pip", "uv-example": "uv-docker-example style", "project": "this project"}
MB = 1_000_000
POLL = 0.02  # seconds between probes: the resolution of the start-up figures
PREFIX = f"boards-compare-{os.getpid()}"


def log(line: str) -> None:
    print(f"image-compare: {line}", file=sys.stderr, flush=True)


def run(*argv: str, check: bool = True, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(argv, cwd=ROOT, env=env, text=True, capture_output=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result.stdout


def timed(*argv: str, env: dict[str, str] | None = None) -> float:
    began = time.perf_counter()
    run(*argv, env=env)
    return time.perf_counter() - began


def resolve(kind: str) -> str:
    """The base image to use: the official one, or the stand-in (tools/standins, loud)."""
    return run("tools/standins/resolve.sh", kind).strip()


def ca_bundle() -> str | None:
    """The CA bundle for the `ssl_ca` secret, as tools/image/build.sh picks it."""
    bundle = os.environ.get("BOARDS_BUILD_CA_BUNDLE", os.environ.get("SSL_CERT_FILE", ""))
    return bundle if bundle and Path(bundle).is_file() else None


# -- images --------------------------------------------------------------------------------------


@dataclass
class Image:
    name: str
    bases: dict[str, str]

    @property
    def tag(self) -> str:
        return f"boards-compare/{self.name}:latest"

    @property
    def changed_tag(self) -> str:
        return f"boards-compare/{self.name}:code-change"

    def build(self, context: Path, tag: str) -> float:
        if self.name == "project":
            return timed("tools/image/build.sh", "--tag", tag, "--context", str(context), "--quiet")
        if self.name == "pip" and context != ROOT:  # the constraints, inside the context
            (context / CONSTRAINTS).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / CONSTRAINTS, context / CONSTRAINTS)
        argv = [
            "docker",
            "build",
            "--quiet",
            "--file",
            str(context / "tools/bench/reference" / f"{self.name}.Dockerfile"),
            "--tag",
            tag,
            "--build-arg",
            f"PYTHON_IMAGE={self.bases['python']}",
            "--build-arg",
            f"UV_IMAGE={self.bases['uv']}",
        ]
        bundle = ca_bundle()
        if bundle:
            argv += ["--secret", f"id=ssl_ca,src={bundle}"]
        return timed(*argv, str(context), env=dict(os.environ, DOCKER_BUILDKIT="1"))

    def rebuild_no_change(self) -> float:
        if self.name == "project":  # what a developer runs
            return timed(just(), "image", self.tag)
        return self.build(ROOT, self.tag)

    def run_argv(self, role: str) -> list[str]:
        """The image and command of a role (the uv-example image has no ENTRYPOINT)."""
        return [self.tag, "boards", role] if self.name == "uv-example" else [self.tag, role]


def rules(ignore_file: Path) -> list[str]:
    lines = (line.strip() for line in ignore_file.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def same_context() -> None:
    """The uv-example reference builds from the project's scoped context (a copy of its rules)."""
    project = ROOT / "packages/backend/.dockerignore"
    copy = REFERENCE / "uv-example.Dockerfile.dockerignore"
    if rules(project) != rules(copy):
        raise SystemExit(f"image-compare: {copy} no longer has the rules of {project}: update it")


def just() -> str:
    return shutil.which("just") or str(ROOT / ".venv/bin/just")


def size(image: str) -> int:
    return int(run("docker", "image", "inspect", "--format", "{{.Size}}", image))


# -- probes --------------------------------------------------------------------------------------


def http_json(port: int, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        if body is None:
            connection.request("GET", path)
        else:
            payload = json.dumps(body)
            connection.request("POST", path, payload, {"content-type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    except (OSError, http.client.HTTPException, ValueError):
        return 0, None  # not listening yet (docker-proxy accepts, then the reset), or no JSON
    finally:
        connection.close()


def until(what: str, ready: Callable[[], bool], container: str, timeout: float = 90) -> float:
    """perf_counter() when ``ready()`` first holds; fails early if the container exited."""
    deadline = time.perf_counter() + timeout
    checks = 0
    while time.perf_counter() < deadline:
        if ready():
            return time.perf_counter()
        checks += 1
        if checks % 25 == 0 and state(container) == "exited":
            raise RuntimeError(f"{container} exited before {what}:\n{logs(container)}")
        time.sleep(POLL)
    raise TimeoutError(f"{container}: no {what} within {timeout:.0f} s:\n{logs(container)}")


def state(container: str) -> str:
    return run("docker", "inspect", "--format", "{{.State.Status}}", container).strip()


def health(container: str) -> str:
    fmt = "{{if .State.Health}}{{.State.Health.Status}}{{end}}"
    return run("docker", "inspect", "--format", fmt, container).strip()


def is_healthy(container: str) -> bool:
    return health(container) == "healthy"


def logs(container: str) -> str:
    result = subprocess.run(["docker", "logs", "--tail", "30", container], capture_output=True)
    return (result.stdout + result.stderr).decode(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(container: str) -> tuple[float, int]:
    """Seconds `docker stop` took, and the container's exit code."""
    seconds = timed("docker", "stop", container)
    code = int(run("docker", "inspect", "--format", "{{.State.ExitCode}}", container))
    return seconds, code


def remove(*containers: str) -> None:
    subprocess.run(["docker", "rm", "-f", *containers], capture_output=True)


#: Runs `boards healthcheck` N times inside the container; prints the CPU seconds per run.
HEALTHCHECK_CPU = (
    "import resource, subprocess, sys\n"
    "n = int(sys.argv[1])\n"
    "for _ in range(n): subprocess.run(['boards', 'healthcheck'], capture_output=True)\n"
    "r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print((r.ru_utime + r.ru_stime) / n)"
)


def cpu_seconds(container: str) -> float:
    """CPU time the container's cgroup has used so far (the engine's stats API)."""
    client = docker.from_env()
    try:
        stats = client.containers.get(container).stats(stream=False, one_shot=True)
    finally:
        client.close()
    return float(stats["cpu_stats"]["cpu_usage"]["total_usage"]) / 1e9


def healthcheck_interval(image: str) -> float | None:
    """Seconds between the image's HEALTHCHECK runs, or None without one."""
    found = json.loads(run("docker", "image", "inspect", "--format", "{{json .Config}}", image))
    interval = (found.get("Healthcheck") or {}).get("Interval")
    return None if interval is None else interval / 1e9


def rss_mb(container: str) -> float:
    """Resident memory of the container's processes (ps on the host: `docker top`)."""
    rows = run("docker", "top", container, "-o", "pid,rss").splitlines()[1:]
    return sum(int(row.split()[1]) for row in rows) * 1024 / MB


# -- one round of one image ----------------------------------------------------------------------


def build_round(image: Image, work: Path, cold: bool) -> dict[str, float]:
    figures: dict[str, float] = {}
    if cold:
        log("pruning every build cache (--cold)")
        run("docker", "builder", "prune", "--all", "--force")
    log(f"{image.name}: first build")
    figures["first_build_s"] = image.build(ROOT, image.tag)
    log(f"{image.name}: no-change re-build")
    figures["no_change_s"] = image.rebuild_no_change()
    init = work / "packages/backend/src/boards/__init__.py"
    with init.open("a") as handle:
        handle.write(f"# image-compare {time.time_ns()}\n")
    log(f"{image.name}: code-change re-build")
    figures["code_change_s"] = image.build(work, image.changed_tag)
    return figures


def api_round(image: Image) -> dict[str, float]:
    figures: dict[str, float] = {}
    name, port = f"{PREFIX}-{image.name}-api", free_port()
    log(f"{image.name}: start-up")
    figures["floor_s"] = timed(
        "docker", "run", "--rm", "--entrypoint", "python", image.tag, "-c", "pass"
    )
    try:
        began = time.perf_counter()
        run("docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8800", image.tag)
        at = until("/health 200", lambda: http_json(port, "/health")[0] == 200, name)
        figures["health_s"] = at - began
        ready = until(
            "system health 200",
            lambda: http_json(port, "/api/v1/system/health")[0] == 200,
            name,
        )
        figures["system_health_s"] = ready - began
        healthy = until("healthy", lambda: health(name) == "healthy", name)
        figures["healthy_s"] = healthy - began
        figures["healthcheck_cpu_ms"] = 1000 * float(
            run("docker", "exec", name, "python", "-c", HEALTHCHECK_CPU, "5")
        )
        figures["rss_mb"] = rss_mb(name)
        figures["stop_api_s"], code = stop(name)
        figures["stop_api_exit"] = code
    finally:
        remove(name)
    return figures


def worker_round(image: Image, redis_image: str) -> dict[str, float]:
    """The worker beside an API on a private network: Redis, one SQLite volume for both."""
    figures: dict[str, float] = {}
    net, volume = f"{PREFIX}-net", f"{PREFIX}-data"
    redis, api, worker = f"{PREFIX}-redis", f"{PREFIX}-wapi", f"{PREFIX}-worker"
    port = free_port()
    common = ["--network", net, "-v", f"{volume}:/app/data"]
    common += ["-e", f"BOARDS_REDIS_URL=redis://{redis}:6379/0"]
    log(f"{image.name}: worker")
    run("docker", "network", "create", net)
    run("docker", "volume", "create", volume)
    try:
        run("docker", "run", "-d", "--name", redis, "--network", net, redis_image)
        run(
            "docker",
            "run",
            "-d",
            "--name",
            api,
            "-p",
            f"127.0.0.1:{port}:8800",
            *common,
            *image.run_argv("api"),
        )

        def post(body: dict[str, Any]) -> str:
            job: list[str] = []

            def accepted() -> bool:
                status, answer = http_json(port, "/api/v1/jobs", body)
                if status == 202:
                    job.append(answer["id"])
                return bool(job)

            until("a 202 for a job", accepted, api)
            return job[0]

        def status_of(job: str) -> str:
            return str((http_json(port, f"/api/v1/jobs/{job}")[1] or {}).get("status"))

        # Time to consuming: a job waits in the queue; the worker starts; the job is done.
        job = post({"payload": "image-compare"})
        began = time.perf_counter()
        run("docker", "run", "-d", "--name", worker, *common, *image.run_argv("worker"))
        done = until("the queued job done", lambda: status_of(job) == "succeeded", worker)
        figures["worker_consuming_s"] = done - began
        figures["stop_worker_s"], figures["stop_worker_exit"] = stop(worker)
        remove(worker)
        # A 20 s job in flight: the worker hands it back within its shutdown timeout.
        run("docker", "run", "-d", "--name", worker, *common, *image.run_argv("worker"))
        job = post({"payload": "image-compare", "delay_seconds": 20})
        until("the job running", lambda: status_of(job) == "running", worker)
        figures["stop_worker_busy_s"], figures["stop_worker_busy_exit"] = stop(worker)
    finally:
        remove(worker, api, redis)
        subprocess.run(["docker", "network", "rm", net], capture_output=True)
        subprocess.run(["docker", "volume", "rm", volume], capture_output=True)
    return figures


def idle_round(images: list[Image], window: float) -> dict[str, float]:
    """The API of each image, started together: its CPU, in % of one core, over `window` seconds
    once every one is healthy (their own HEALTHCHECK runs included)."""
    names = {image.name: f"{PREFIX}-{image.name}-idle" for image in images}
    log(f"idle: {', '.join(names)} for {window:.0f} s")
    try:
        for image in images:
            run("docker", "run", "-d", "--name", names[image.name], *image.run_argv("api"))
        for name in names.values():
            until("healthy", functools.partial(is_healthy, name), name)
        before = {image: cpu_seconds(name) for image, name in names.items()}
        began = time.perf_counter()
        time.sleep(window)  # the measurement itself: a quiet window
        after = {image: cpu_seconds(name) for image, name in names.items()}
        elapsed = time.perf_counter() - began
    finally:
        remove(*names.values())
    return {image: 100 * (after[image] - before[image]) / elapsed for image in names}


# -- report --------------------------------------------------------------------------------------


def one_round(image: Image, work: Path, cold: bool, base_size: int) -> dict[str, float]:
    figures = build_round(image, work, cold)
    figures["size"] = size(image.tag)
    figures["over_base"] = figures["size"] - base_size
    figures.update(api_round(image))
    figures["over_floor_s"] = figures["health_s"] - figures["floor_s"]
    if image.name == "project":
        figures.update(worker_round(image, image.bases["redis"]))
    return figures


def table(
    medians: dict[str, dict[str, float]],
    names: list[str],
    cold: bool,
    interval: float | None = None,
    window: float | None = None,
) -> Table:
    """`interval`: the project's HEALTHCHECK interval; Docker 20.10 runs the first check one
    interval after the start, so `healthy` is due shortly after it."""
    columns = [TITLES[name] for name in names]
    out = Table(
        columns, title="", judged=TITLES["project"] if "project" in names else "(no project column)"
    )

    def values(key: str, scale: float = 1) -> dict[str, float | None]:
        found = {TITLES[n]: medians[n].get(key) for n in names}
        return {k: None if v is None else v * scale for k, v in found.items()}

    uv_ref = (TITLES["uv-example"],) if "uv-example" in names else ()
    refs = tuple(TITLES[n] for n in names if n != "project")
    first_label, first_goal = (
        ("cold build (every build cache pruned)", Goal(than=uv_ref, factor=1.1))
        if cold
        else ("first build, warm cache (not cold: no --cold)", None)
    )
    healthy = "`docker run` to Docker `healthy`" + (
        f" (interval {interval:g} s)" if interval else ""
    )
    idle = f"idle API, CPU over {window or 0:g} s, health checks included"
    # Per section: label, figure, unit, digits, goal. A figure no image has (the worker's, idle
    # CPU when skipped) is left out. Sizes are measured in bytes and shown in MB.
    worker_done = "worker: `docker run` to its first job done"
    rows: dict[str, list[tuple[str, str, str, int, Goal | None]]] = {
        "build": [
            (first_label, "first_build_s", "s", 1, first_goal),
            ("no-change re-build (the project: `just image`)", "no_change_s", "s", 2, Goal(0.5)),
            ("code-change re-build", "code_change_s", "s", 1, Goal(3.0)),
        ],
        "size": [
            ("size", "size", "MB", 1, Goal(than=uv_ref)),
            ("size over the base", "over_base", "MB", 1, None),
        ],
        "start-up": [
            ("floor: `docker run` of `python -c pass`", "floor_s", "s", 2, None),
            ("`docker run` to first `/health` 200", "health_s", "s", 2, Goal(1.0, than=refs)),
            ("… minus the floor", "over_floor_s", "s", 2, None),
            ("`docker run` to `/api/v1/system/health` 200", "system_health_s", "s", 2, Goal(1.2)),
            (healthy, "healthy_s", "s", 2, Goal(interval + 1.0) if interval else None),
            (worker_done, "worker_consuming_s", "s", 2, Goal(1.5)),
        ],
        "health check CPU": [("health check, CPU per run", "healthcheck_cpu_ms", "ms", 0, None)],
        "idle CPU": [(idle, "idle_cpu_pct", "%", 2, Goal(1.0))],
        "memory": [("idle RSS, API", "rss_mb", "MB", 1, None)],
        "stop": [
            ("`docker stop`, idle API", "stop_api_s", "s", 2, None),
            ("`docker stop`, idle worker", "stop_worker_s", "s", 2, None),
            ("`docker stop`, worker with a 20 s job in flight", "stop_worker_busy_s", "s", 2, None),
        ],
    }
    for section, section_rows in rows.items():
        for label, key, unit, digits, goal in section_rows:
            if not any(key in medians[n] for n in names):
                continue
            scale = 1 / MB if key in ("size", "over_base") else 1
            better = None if key == "floor_s" else "lower"
            found = values(key, scale)
            out.add(label, found, unit, digits=digits, better=better, goal=goal, section=section)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--cold",
        action="store_true",
        help="prune every build cache before each first build (`docker builder prune --all`: "
        "empties the cache of everyone on this engine)",
    )
    parser.add_argument("--only", action="append", choices=NAMES, help="repeatable; default all")
    parser.add_argument(
        "--idle-window",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long the idle APIs' CPU is measured, each round (default 60; 0 skips it)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / ".cache/bench/image-compare.json")
    parser.add_argument(
        "--write-docs", action="store_true", help="chart to docs/performance/, not .cache/bench/"
    )
    parser.add_argument(
        "--report", type=Path, metavar="JSON", help="print and chart a saved run; no builds"
    )
    args = parser.parse_args()
    if args.report:
        return present(json.loads(args.report.read_text()), args.write_docs)
    names = [n for n in NAMES if not args.only or n in args.only]
    same_context()
    bases = {kind: resolve(kind) for kind in ("python", "uv", "redis")}
    base_size = size(bases["python"])
    (ROOT / CONSTRAINTS).parent.mkdir(parents=True, exist_ok=True)
    run(
        "uv",
        "export",
        "--frozen",
        "--quiet",
        "--no-dev",
        "--package",
        "boards-backend",
        "--no-hashes",
        "--no-emit-workspace",
        "--no-header",
        "--output-file",
        str(CONSTRAINTS),
    )
    images = {name: Image(name, bases) for name in names}
    started = {"date": today(), "machine": machine()}
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="image-compare-") as tmp:
        work = Path(tmp)
        run("tools/image/copy-workspace.sh", str(work))
        for number in range(1, args.rounds + 1):
            for name, image in images.items():
                if name in failed:
                    continue
                log(f"round {number}/{args.rounds}: {name}")
                try:
                    rounds[name].append(one_round(image, work, args.cold, base_size))
                except (RuntimeError, TimeoutError) as error:  # the others still get measured
                    log(f"{name} failed, left out of the remaining rounds: {error}")
                    failed[name] = [line for line in str(error).splitlines() if line][-1]
            idle = [image for name, image in images.items() if name not in failed]
            if args.idle_window > 0 and idle:
                try:
                    for name, pct in idle_round(idle, args.idle_window).items():
                        rounds[name][-1]["idle_cpu_pct"] = pct
                except (RuntimeError, TimeoutError) as error:
                    log(f"idle CPU not measured this round: {error}")
    for image in images.values():  # our own scratch tag; the :latest ones stay for inspection
        subprocess.run(["docker", "image", "rm", image.changed_tag], capture_output=True)
    medians = {
        name: {
            key: statistics.median(r[key] for r in runs if key in r)
            for key in dict.fromkeys(k for r in runs for k in r)
        }
        for name, runs in rounds.items()
        if runs
    }
    names = [name for name in names if name in medians]
    if not names:
        log("no image was measured")
        return 1
    result = {
        **started,
        "machine_after": machine(),
        "rounds": args.rounds,
        "cold": args.cold,
        "base": {"image": bases["python"], "size": base_size},
        "idle_window_s": args.idle_window,
        "healthcheck_interval_s": healthcheck_interval(images["project"].tag)
        if "project" in images
        else None,
        "uv": bases["uv"],
        "images": {name: {"tag": images[name].tag, "rounds": rounds[name]} for name in names},
        "failed": failed,
        "median": medians,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    log(f"figures written to {args.out}")
    return present(result, args.write_docs)


def present(result: dict[str, Any], write_docs: bool) -> int:
    """Print the table and draw the chart of a run (just measured, or read back by --report)."""
    medians: dict[str, dict[str, float]] = result["median"]
    names = [name for name in NAMES if name in medians]
    report = table(
        medians,
        names,
        result["cold"],
        result.get("healthcheck_interval_s"),
        result.get("idle_window_s"),
    )
    kind = "cold" if result["cold"] else "warm, provisional: no --cold"
    base = result["base"]
    heading = (
        f"Image comparison, {result['date']}, median of {result['rounds']} ({kind}); "
        f"base {base['image']} ({base['size'] / MB:.1f} MB); {result['machine']} before, "
        f"{result['machine_after']} after"
    )
    print(heading + "\n\n" + report.markdown())
    for name, reason in result["failed"].items():
        print(f"\n{name}: failed ({reason}); its figures are from the rounds before, if any")
    for name in names:
        exits = {k: v for k, v in medians[name].items() if k.endswith("_exit") and v != 0}
        if exits:
            print(f"\n{name}: non-zero exit codes on stop: {exits}")
    charts = ROOT / ("docs/performance" if write_docs else ".cache/bench")
    png = chart.bar_chart(
        report,
        charts / "image-compare.png",
        f"Image comparison, median of {result['rounds']} ({kind})",
        f"{result['date']}, {result['machine']}",
    )
    log(f"chart written to {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
