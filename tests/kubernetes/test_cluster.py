"""The dev overlay on a real cluster: kind, in the CI workflow kubernetes.yml.

Skipped unless BOARDS_KIND_CLUSTER names a kind cluster (`kind` and `kubectl` on PATH). It
loads the images the simulation uses into the cluster, applies the rendered dev overlay with
those images, waits for the migration Job and the rollouts, pushes jobs through the Service,
shows that a pod without the client label cannot (kind's kindnet enforces NetworkPolicies),
and that the namespace's admission rejects a pod that breaks the restricted standard.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest
import yaml

from tests.kubernetes.manifests import (
    NAMESPACE,
    Obj,
    all_containers,
    image_map,
    kubectl,
    of_kind,
    pod_specs,
)
from tests.kubernetes.policy import BAD_POD
from tests.kubernetes.smoke import smoke_job, summary

CLUSTER = os.environ.get("BOARDS_KIND_CLUSTER", "")
TIMEOUT = "300s"

pytestmark = pytest.mark.skipif(
    not CLUSTER, reason="needs a kind cluster: BOARDS_KIND_CLUSTER (set by kubernetes.yml in CI)"
)


def run(
    *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(args), input=stdin, capture_output=True, text=True, check=False, timeout=600
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(args[:4])} ... exited {result.returncode}:\n{result.stdout}\n"
            f"{result.stderr}\n{explain()}",
            pytrace=False,
        )
    return result


def k(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(kubectl(), "--context", f"kind-{CLUSTER}", *args, stdin=stdin, check=check)


def explain() -> str:
    """What a person would look at: objects, events, and the pods' last log lines."""
    out = []
    for args in (
        ("get", "all,pvc", "-o", "wide"),
        ("get", "events", "--sort-by=.lastTimestamp"),
        (
            "logs",
            "-l",
            "app.kubernetes.io/part-of=boards",
            "--all-containers",
            "--prefix",
            "--tail=30",
        ),
    ):
        result = subprocess.run(
            [kubectl(), "--context", f"kind-{CLUSTER}", "-n", NAMESPACE, *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        out.append(f"$ kubectl {' '.join(args)}\n{result.stdout}{result.stderr}")
    return "\n".join(out)


def rolled_out(workload: str) -> None:
    k("-n", NAMESPACE, "rollout", "status", workload, f"--timeout={TIMEOUT}")


def run_job(job: Obj, until: str) -> str:
    """Apply a Job and wait for its `until` condition (complete or failed): its logs."""
    name = f"job/{job['metadata']['name']}"
    k("apply", "-f", "-", stdin=yaml.safe_dump(job))
    waited = k(
        "-n",
        NAMESPACE,
        "wait",
        f"--for=condition={until}",
        name,
        f"--timeout={TIMEOUT}",
        check=False,
    )
    logs = k("-n", NAMESPACE, "logs", name, check=False).stdout
    assert waited.returncode == 0, f"{logs}\n{explain()}"
    return logs


@pytest.fixture(scope="module")
def deployed(rendered: dict[str, list[Obj]], local_images: dict[str, str]) -> Iterator[list[Obj]]:
    kind = shutil.which("kind")
    assert kind, "kind is not on PATH (helm/kind-action installs it)"
    objects = copy.deepcopy(rendered["dev"])
    images = image_map(objects, local_images)
    for _, spec in pod_specs(objects):
        for container in all_containers(spec):
            container["image"] = images[container["image"]]
    for image in sorted(set(images.values())):
        run(kind, "load", "docker-image", image, "--name", CLUSTER)
    k("apply", "-f", "-", stdin=yaml.safe_dump_all(objects))
    try:
        yield objects
    finally:
        k("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def test_dev_overlay_migrates_and_rolls_out(deployed: list[Obj]) -> None:
    (migrate,) = of_kind(deployed, "Job")
    k(
        "-n",
        NAMESPACE,
        "wait",
        "--for=condition=complete",
        f"job/{migrate['metadata']['name']}",
        f"--timeout={TIMEOUT}",
    )
    for kind in ("StatefulSet", "Deployment"):
        for obj in of_kind(deployed, kind):
            rolled_out(f"{kind.lower()}/{obj['metadata']['name']}")
    ready = k(
        "-n", NAMESPACE, "get", "deployment/boards-api", "-o", "jsonpath={.status.readyReplicas}"
    )
    assert ready.stdout == "2"


def test_jobs_round_trip_through_the_service(
    deployed: list[Obj], local_images: dict[str, str]
) -> None:
    rolled_out("deployment/boards-worker")
    job = smoke_job(local_images["boards-backend"], api_url="http://boards-api:8800", jobs=10)
    result = summary(run_job(job, until="complete"))
    assert result["succeeded"] == 10, result


def test_admission_rejects_a_pod_that_breaks_restricted(deployed: list[Obj]) -> None:
    result = k("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(BAD_POD), check=False)
    assert result.returncode != 0
    assert "violates PodSecurity" in result.stderr, result.stderr


def test_network_policy_keeps_out_a_pod_without_the_client_label(
    deployed: list[Obj], local_images: dict[str, str]
) -> None:
    rolled_out("deployment/boards-api")
    job = smoke_job(local_images["boards-backend"], api_url="http://boards-api:8800", jobs=1)
    job["metadata"]["name"] = "boards-stranger"
    labels = job["spec"]["template"]["metadata"]["labels"]
    del labels["boards.dev/api-client"]
    logs = run_job(job, until="failed")
    # No connection at all (dropped: timed out, or rejected), not an HTTP answer.
    assert "urlopen error" in logs and "SMOKE " not in logs, logs
