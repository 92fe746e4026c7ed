"""Network policies: every pod of every overlay starts from default deny, the traffic the roles
need gets through, the rest does not; and the checks fail on broken samples. Evaluated offline
by netpol.py (the simulation does not enforce NetworkPolicies; kindnet in the CI kind job does).
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import pytest

from tests.kubernetes.manifests import OVERLAYS, Obj, find, of_kind, settings
from tests.kubernetes.netpol import Peer, allowed, default_deny_gaps, pods
from tests.kubernetes.schemas import schema_errors
from tests.kubernetes.smoke import smoke_job

CLIENT_LABEL = "boards.dev/api-client"
BASE_POLICIES = {
    "boards-default-deny",
    "boards-dns",
    "boards-api",
    "boards-api-clients",
    "boards-worker",
    "boards-migrate",
}
DEV_POLICIES = {"boards-postgres", "boards-redis"}

CLIENT = Peer("client pod", labels={CLIENT_LABEL: "true"})
STRANGER = Peer("unlabelled pod in boards", labels={"app": "debug"})
REMOTE_CLIENT = Peer(
    "client in a labelled namespace",
    namespace="shop",
    namespace_labels={CLIENT_LABEL: "true"},
    labels={CLIENT_LABEL: "true"},
)
REMOTE_UNLABELLED_NS = Peer(
    "client in an unlabelled namespace", namespace="shop", labels={CLIENT_LABEL: "true"}
)
OUTSIDER = Peer("pod in another namespace", namespace="shop", labels={"app": "shop"})
INGRESS = Peer(
    "ingress controller",
    namespace="ingress-nginx",
    namespace_labels={"boards.dev/ingress": "true"},
    labels={"app.kubernetes.io/name": "ingress-nginx"},
)
MONITORING = Peer(
    "prometheus",
    namespace="monitoring",
    namespace_labels={"boards.dev/monitoring": "true"},
    labels={"app.kubernetes.io/name": "prometheus"},
)
DNS = Peer("kube-dns", namespace="kube-system", labels={"k8s-app": "kube-dns"})
DATABASE = Peer("managed PostgreSQL", ip="10.20.0.5")
REDIS = Peer("managed Redis", ip="10.20.0.6")
INTERNET = Peer("the internet", ip="203.0.113.9")


class Case(NamedTuple):
    src: Peer
    dst: Peer
    port: int
    protocol: str
    expected: bool

    def __str__(self) -> str:
        verb = "must reach" if self.expected else "must not reach"
        return f"{self.src.name} {verb} {self.dst.name}:{self.port}/{self.protocol}"


def role(objects: list[Obj], component: str) -> Peer:
    for _, pod in pods(objects):
        if pod.labels.get("app.kubernetes.io/component") == component:
            return pod
    raise LookupError(component)


def cases(objects: list[Obj]) -> list[Case]:
    """What the roles need (True), and a sample of what nobody needs (False)."""
    config = settings(objects)
    http, metrics = int(config["BOARDS_API_PORT"]), int(config["BOARDS_WORKER_METRICS_PORT"])
    api, worker, migrate = (role(objects, c) for c in ("api", "worker", "migrate"))
    dev = any(o["metadata"]["name"] == "boards-postgres" for o in of_kind(objects, "StatefulSet"))
    database = role(objects, "database") if dev else DATABASE
    redis = role(objects, "broker") if dev else REDIS
    out = [
        Case(src, api, http, "TCP", True) for src in (CLIENT, REMOTE_CLIENT, INGRESS, MONITORING)
    ]
    out.append(Case(MONITORING, worker, metrics, "TCP", True))
    for pod in (api, worker, migrate):
        out += [Case(pod, DNS, 53, "UDP", True), Case(pod, DNS, 53, "TCP", True)]
        out += [Case(pod, database, 5432, "TCP", True), Case(pod, INTERNET, 443, "TCP", False)]
    out += [Case(api, redis, 6379, "TCP", True), Case(worker, redis, 6379, "TCP", True)]
    out += [
        Case(migrate, redis, 6379, "TCP", False),
        Case(STRANGER, api, http, "TCP", False),
        Case(OUTSIDER, api, http, "TCP", False),
        Case(REMOTE_UNLABELLED_NS, api, http, "TCP", False),
        Case(INGRESS, worker, metrics, "TCP", False),
        Case(CLIENT, worker, metrics, "TCP", False),
        Case(api, worker, metrics, "TCP", False),
        Case(worker, api, http, "TCP", False),
        Case(STRANGER, INTERNET, 443, "TCP", False),
        Case(OUTSIDER, STRANGER, 8080, "TCP", False),
        Case(CLIENT, database, 5432, "TCP", False),
    ]
    if dev:
        out += [
            Case(STRANGER, database, 5432, "TCP", False),
            Case(OUTSIDER, database, 5432, "TCP", False),
            Case(OUTSIDER, redis, 6379, "TCP", False),
            Case(CLIENT, redis, 6379, "TCP", False),
        ]
    return out


def connectivity_errors(objects: list[Obj]) -> list[str]:
    policies = of_kind(objects, "NetworkPolicy")
    return [
        str(case)
        for case in cases(objects)
        if allowed(policies, case.src, case.dst, case.port, case.protocol) != case.expected
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_policies_are_rendered_and_valid(rendered: dict[str, list[Obj]], overlay: str) -> None:
    policies = of_kind(rendered[overlay], "NetworkPolicy")
    names = {p["metadata"]["name"] for p in policies}
    assert names == BASE_POLICIES | (DEV_POLICIES if overlay == "dev" else set())
    assert [e for p in policies for e in schema_errors(p)] == []
    assert {p["metadata"]["namespace"] for p in policies} == {"boards"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_selected_by_a_default_deny(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    smoke = smoke_job("boards-backend:local", api_url="http://boards-api:8800", jobs=1)
    (_, smoke_pod), *_ = pods([smoke])
    assert default_deny_gaps(rendered[overlay], extra=[smoke_pod, STRANGER, CLIENT]) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_needed_traffic_passes_and_the_rest_does_not(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    assert connectivity_errors(rendered[overlay]) == []


def test_the_smoke_job_is_a_client(rendered: dict[str, list[Obj]]) -> None:
    """The smoke Job pushes jobs through the Service in the kind cluster, where kindnet
    enforces the policies."""
    smoke = smoke_job("boards-backend:local", api_url="http://boards-api:8800", jobs=1)
    (_, pod), *_ = pods([smoke])
    objects = rendered["dev"]
    policies = of_kind(objects, "NetworkPolicy")
    api = role(objects, "api")
    assert allowed(policies, pod, api, int(settings(objects)["BOARDS_API_PORT"]))
    assert allowed(policies, pod, DNS, 53, "UDP")


# -- the checks fail on broken samples ----------------------------------------------------------


def without(objects: list[Obj], name: str) -> list[Obj]:
    return [
        o for o in objects if not (o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == name)
    ]


def test_a_missing_default_deny_is_caught(rendered: dict[str, list[Obj]]) -> None:
    objects = without(rendered["dev"], "boards-default-deny")
    gaps = "\n".join(default_deny_gaps(objects, extra=[STRANGER]))
    assert "unlabelled pod in boards: no default-deny policy for Ingress" in gaps
    assert "StatefulSet/boards-redis: no default-deny policy for Egress" in gaps
    # Role policies still isolate their pods, boards-dns every pod's egress; ingress is open.
    assert connectivity_errors(objects) == [
        "pod in another namespace must not reach unlabelled pod in boards:8080/TCP"
    ]


def test_missing_allow_rules_are_caught(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["production"]
    assert "Deployment/boards-api must reach kube-dns:53/UDP" in connectivity_errors(
        without(objects, "boards-dns")
    )
    assert "client pod must reach Deployment/boards-api:8800/TCP" in connectivity_errors(
        without(objects, "boards-api-clients")
    )
    broken = copy.deepcopy(objects)
    api_policy = find(broken, "NetworkPolicy", "boards-api")
    api_policy["spec"]["ingress"][0]["ports"][0]["port"] = 8080  # not the API's port
    worker_policy = find(broken, "NetworkPolicy", "boards-worker")
    worker_policy["spec"]["egress"] = [{}]  # anywhere
    errors = connectivity_errors(broken)
    assert "ingress controller must reach Deployment/boards-api:8800/TCP" in errors
    assert "Deployment/boards-worker must not reach the internet:443/TCP" in errors


def test_dev_datastores_only_take_their_clients(rendered: dict[str, list[Obj]]) -> None:
    objects = copy.deepcopy(rendered["dev"])
    redis_policy = find(objects, "NetworkPolicy", "boards-redis")
    redis_policy["spec"]["ingress"][0]["from"] = [{"namespaceSelector": {}}]  # anyone
    errors = connectivity_errors(objects)
    assert errors == ["pod in another namespace must not reach StatefulSet/boards-redis:6379/TCP"]


def test_schema_check_rejects_a_bad_policy(rendered: dict[str, list[Obj]]) -> None:
    policy = copy.deepcopy(find(rendered["production"], "NetworkPolicy", "boards-dns"))
    policy["spec"]["policyType"] = ["Egress"]  # a typo
    policy["spec"]["egress"][0]["ports"][0]["port"] = 53.5
    assert schema_errors(policy)
