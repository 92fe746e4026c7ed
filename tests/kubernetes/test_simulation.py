"""The dev overlay, its backend image pinned by digest, run on the local Docker engine by
tests/kubernetes/kubelet.py. NetworkPolicies are rendered but not enforced here (test_netpol.py
evaluates them; the CI kind cluster's kindnet enforces them).

Every container spec of the render runs as rendered (image, command, args, env with the
ConfigMap and Secret resolved, user, read-only root, dropped capabilities, emptyDirs as tmpfs),
on a network of its own where the Service names are network aliases. Each probe is run as the
kubelet runs it and must pass. The steps build on each other, in this order:

1. PostgreSQL and Redis (the StatefulSets; the session's official or stand-in images);
2. two API and two worker pods before any migration: the API is alive but not ready ("schema
   not at head"), the workers wait in their init container;
3. the migration Job to completion: then the API pods are ready, the workers start;
4. jobs pushed through the Service `boards-api` by the smoke Job: every one succeeds;
5. a backlog shows in the Redis list the KEDA ScaledObject watches;
6. SIGTERM, with the pod's grace period, to a worker with a job in flight: the job finishes on
   the other worker.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from boards_testing.waiting import wait_for
from docker import DockerClient
from testcontainers.core.network import Network

from tests.kubernetes.kubelet import Cluster, Container, Kubelet, Pod
from tests.kubernetes.manifests import (
    Obj,
    all_containers,
    copy_with_image,
    find,
    image_map,
    is_backend,
    of_kind,
    pod_specs,
    ref,
    render,
    settings,
)
from tests.kubernetes.schemas import schema_errors
from tests.kubernetes.smoke import smoke_job, summary

SMOKE_JOBS = 20


@dataclass
class Stack:
    """The simulated cluster, shared by the steps (tests) of this module, in order."""

    kubelet: Kubelet
    objects: list[Obj]
    pods: dict[str, list[Pod]] = field(default_factory=dict)

    def need(self, name: str) -> list[Pod]:
        if name not in self.pods:
            pytest.fail(f"no {name} pods: an earlier step of this module failed")
        return self.pods[name]

    def api(self) -> Container:
        return self.need("api")[0].container()

    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api().host_port('http')}"


@pytest.fixture(scope="module")
def pinned(
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: DockerClient,
    local_images: dict[str, str],
) -> list[Obj]:
    """The dev overlay with its backend image pinned by digest alone, as production pins it.
    No registry here: the local image's ID (the digest of its config) stands for the
    registry's manifest digest, and the containers run from exactly that ID."""
    digest = docker_client.images.get(local_images["boards-backend"]).id
    overlays = copy_with_image(tmp_path_factory.mktemp("pinned"), "dev", {"digest": digest})
    return render(overlays / "dev")


def test_the_pinned_render_is_valid(pinned: list[Obj]) -> None:
    assert {ref(o): schema_errors(o) for o in pinned if schema_errors(o)} == {}
    for _, spec in pod_specs(pinned):
        for c in all_containers(spec):
            if is_backend(c):
                assert re.fullmatch(r"boards-backend@sha256:[0-9a-f]{64}", c["image"]), c["image"]
    (migrate,) = of_kind(pinned, "Job")
    assert migrate["metadata"]["name"] == "boards-migrate-local"  # the version, not the digest


@pytest.fixture(scope="module")
def stack(
    docker_client: DockerClient,
    pinned: list[Obj],
    local_images: dict[str, str],
) -> Iterator[Stack]:
    objects = pinned
    # A digest reference runs the image with that ID; tags map to the session's images.
    images = {
        image: image.partition("@")[2] or local
        for image, local in image_map(objects, local_images).items()
    }
    with Network() as network:
        kubelet = Kubelet(docker_client, network.name, Cluster(objects), images)
        try:
            yield Stack(kubelet=kubelet, objects=objects)
        finally:
            kubelet.cleanup()


def scrape(url: str) -> int:
    """The status a metrics page answers with, or 0 while nothing listens yet."""
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return 0


def post_job(stack: Stack, payload: str, **extra: Any) -> str:
    response = httpx.post(
        f"{stack.api_url()}/api/v1/jobs", json={"payload": payload, **extra}, timeout=10
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def job_state(stack: Stack, job_id: str) -> dict[str, Any]:
    response = httpx.get(f"{stack.api_url()}/api/v1/jobs/{job_id}", timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_datastores_start_and_pass_their_probes(stack: Stack) -> None:
    k = stack.kubelet
    for name in ("boards-postgres", "boards-redis"):
        (pod,) = k.replicas(find(stack.objects, "StatefulSet", name))
        pod.start()
        stack.pods[name] = [pod]
    for name in ("boards-postgres", "boards-redis"):
        c = stack.pods[name][0].container()
        k.started(c)
        k.ready(c)
        k.alive(c)
    redis = stack.pods["boards-redis"][0].container()
    code, output = k.exec(redis, ["redis-cli", "config", "get", "appendonly"], timeout=5)
    assert (code, output.split()) == (0, ["appendonly", "yes"])


def test_pods_wait_for_the_migration_job(stack: Stack) -> None:
    k = stack.kubelet
    api = k.replicas(find(stack.objects, "Deployment", "boards-api"))
    workers = k.replicas(find(stack.objects, "Deployment", "boards-worker"))
    assert (len(api), len(workers)) == (2, 2)
    for pod in api:
        pod.start()
    stack.pods["api"] = api

    with ThreadPoolExecutor(max_workers=2) as pool:
        # Worker pods block in their init container until the schema is at head.
        starting: list[Future[None]] = [pool.submit(pod.start) for pod in workers]
        for pod in workers:
            wait_for(
                lambda pod=pod: pod.init and "schema not at head yet" in pod.init[0].logs(),
                timeout=60,
                what=f"{pod.name}'s init container to wait for the schema",
            )
        for pod in api:
            c = pod.container()
            k.started(c)
            k.alive(c)
            ok, detail = k.probe_once(c, c.spec["readinessProbe"])
            assert not ok and "schema not at head" in detail, detail
        assert all(not future.done() for future in starting)

        migrate = k.run_job(of_kind(stack.objects, "Job")[0])
        assert "database schema upgraded" in migrate.container().logs()
        for future in starting:
            future.result(timeout=60)  # init containers done, worker containers started
    stack.pods["worker"] = workers

    for pod in api:
        c = pod.container()
        k.ready(c)
        assert "upgrading database schema" not in c.logs()  # BOARDS_MIGRATE_ON_START=false
    for pod in workers:
        assert "schema at head" in pod.init[0].logs()
        c = pod.container()
        k.started(c)
        k.alive(c)
        # The exporter the monitoring namespace may scrape, on the port the policy opens.
        url = f"http://127.0.0.1:{c.host_port('metrics')}/metrics"
        wait_for(
            lambda url=url: scrape(url) == 200,
            timeout=20,
            what=f"{pod.name}'s metrics on its port `metrics`",
        )


def test_jobs_round_trip_through_the_api_service(stack: Stack) -> None:
    stack.need("worker")
    api = find(stack.objects, "Deployment", "boards-api")["spec"]["template"]["spec"]
    image = api["containers"][0]["image"]
    job = smoke_job(image, api_url="http://boards-api:8800", jobs=SMOKE_JOBS, timeout=60)
    pod = stack.kubelet.run_job(job)
    result = summary(pod.container().logs())
    assert len(result["addresses"]) == 2, result  # the Service name reaches both API pods
    assert result["succeeded"] == SMOKE_JOBS, result


def test_a_backlog_shows_in_the_list_keda_watches(
    stack: Stack, rendered: dict[str, list[Obj]]
) -> None:
    (trigger,) = find(rendered["autoscaling"], "ScaledObject", "boards-worker")["spec"]["triggers"]
    workers = [pod.container() for pod in stack.need("worker")]
    redis = stack.need("boards-redis")[0].container()
    for c in workers:
        c.docker.pause()  # nobody consumes: the messages wait in the queue
    try:
        ids = [post_job(stack, f"backlog {n}") for n in range(3)]
        code, length = stack.kubelet.exec(
            redis, ["redis-cli", "llen", trigger["metadata"]["listName"]], timeout=5
        )
        assert (code, length.strip()) == (0, "3")
    finally:
        for c in workers:
            c.docker.unpause()
    for job_id in ids:
        wait_for(
            lambda job_id=job_id: job_state(stack, job_id)["status"] == "succeeded",
            timeout=30,
            what=f"backlog job {job_id}",
        )


def test_sigterm_hands_an_in_flight_job_to_the_other_worker(stack: Stack) -> None:
    stopping, other = stack.need("worker")
    grace = stopping.spec["terminationGracePeriodSeconds"]
    shutdown = float(settings(stack.objects)["BOARDS_WORKER_SHUTDOWN_TIMEOUT"])
    payload = "in flight during SIGTERM"

    other.container().docker.pause()  # so that the job lands on the worker to be stopped
    try:
        job_id = post_job(stack, payload, delay_seconds=2 * shutdown)
        wait_for(
            lambda: job_state(stack, job_id)["status"] == "running",
            timeout=20,
            what="the job to start on the worker to be stopped",
        )
    finally:
        other.container().docker.unpause()

    ((code, seconds),) = stopping.terminate().values()
    stopped_logs = stopping.container().logs()
    assert code == 0, stopped_logs[-4000:]  # 137 would be the kubelet's SIGKILL
    assert seconds < grace
    assert f"job {job_id} handed back to the queue" in stopped_logs, stopped_logs[-4000:]
    assert job_state(stack, job_id)["status"] != "succeeded"  # not finished by the stopped one

    done = wait_for(
        lambda: (job := job_state(stack, job_id))["status"] in ("succeeded", "failed") and job,
        timeout=2 * shutdown + 30,
        what="the handed-back job to finish on the other worker",
    )
    assert done["status"] == "succeeded", done
    assert done["result"]["sha256"] == hashlib.sha256(payload.encode()).hexdigest()
    other.container().assert_running()
    print(f"worker stopped {seconds:.1f}s after SIGTERM (grace {grace}s), its job handed over")
