"""Push jobs through the API's Service address and wait for every one to succeed.

Standard library only: it runs inside the backend image (`python -c <this file>`), as the
simulated Job on the Docker network and as a real Job in the kind cluster (tests/kubernetes/
smoke.py builds that Job). Settings from the environment:

    SMOKE_API_URL   e.g. http://boards-api:8800 (the Service)
    SMOKE_JOBS      how many jobs (default 10)
    SMOKE_TIMEOUT   seconds for all of them to finish (default 90)

The last line of output is `SMOKE {json}`; exit code 0 iff every job succeeded with the
result the worker computes (the payload's sha256).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
import urllib.request
from typing import Any
from urllib.parse import urlsplit

TERMINAL = ("succeeded", "failed")


def call(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.load(response))


def main() -> int:
    base = os.environ["SMOKE_API_URL"].rstrip("/")
    count = int(os.environ.get("SMOKE_JOBS", "10"))
    deadline = time.monotonic() + float(os.environ.get("SMOKE_TIMEOUT", "90"))
    host = urlsplit(base).hostname or ""
    # Everything the Service name resolves to: a ClusterIP on a cluster, each API pod's
    # address on the simulation's Docker network (a network alias per matching pod).
    addresses = sorted({info[4][0] for info in socket.getaddrinfo(host, None, socket.AF_INET)})

    payloads: dict[str, str] = {}
    for number in range(count):
        payload = f"smoke job {number} through {host}"
        accepted = call("POST", f"{base}/api/v1/jobs", {"payload": payload})
        payloads[str(accepted["id"])] = payload

    finished: dict[str, dict[str, Any]] = {}
    while len(finished) < count and time.monotonic() < deadline:
        for job_id in payloads.keys() - finished.keys():
            job = call("GET", f"{base}/api/v1/jobs/{job_id}")
            if job["status"] in TERMINAL:
                finished[job_id] = job
        time.sleep(0.2)

    wrong = sorted(
        job_id
        for job_id, job in finished.items()
        if job["status"] != "succeeded"
        or (job.get("result") or {}).get("sha256")
        != hashlib.sha256(payloads[job_id].encode()).hexdigest()
    )
    summary = {
        "service": host,
        "addresses": addresses,
        "jobs": count,
        "succeeded": len(finished) - len(wrong),
        "wrong": wrong,
        "unfinished": sorted(payloads.keys() - finished.keys()),
    }
    print("SMOKE " + json.dumps(summary), flush=True)
    return 0 if summary["succeeded"] == count else 1


if __name__ == "__main__":
    sys.exit(main())
