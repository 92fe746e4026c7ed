"""Every pod meets the restricted Pod Security Standard and this project's rules, in a
namespace that enforces restricted; and the checks reject a pod that breaks them."""

from __future__ import annotations

import copy
import re
import textwrap
from collections.abc import Callable

import pytest
import yaml

from tests.kubernetes.manifests import OVERLAYS, ROOT, Obj, find
from tests.kubernetes.policy import (
    BAD_POD,
    boards_violations,
    namespace_violations,
    restricted_violations,
)
from tests.kubernetes.schemas import schema_errors
from tests.kubernetes.smoke import smoke_job


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_meets_the_restricted_standard(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    objects = rendered[overlay]
    assert [v for obj in objects for v in restricted_violations(obj)] == []
    assert [v for obj in objects for v in boards_violations(obj)] == []
    assert namespace_violations(objects) == []


def test_the_smoke_job_meets_it_too() -> None:
    job = smoke_job("boards-backend:local", api_url="http://boards-api:8800", jobs=1)
    assert restricted_violations(job) == []


# What each check must find in BAD_POD.
@pytest.mark.parametrize(
    ("check", "expected"),
    [
        pytest.param(
            restricted_violations,
            [
                "hostNetwork must not be true",
                "hostPID must not be true",
                "pod: runAsUser must not be 0",
                "sysctl 'kernel.msgmax'",
                "pod: seccompProfile 'Unconfined'",
                "volume host: hostPath volumes are forbidden",
                "volume nfs: type ['nfs'] not allowed",
                "container app: privileged must not be true",
                "container app: procMount must be Default",
                "container app: hostPort 8800 is forbidden",
                "container app: allowPrivilegeEscalation must be false",
                "container app: capabilities.drop must include ALL",
                "container app: capabilities.add ['NET_ADMIN', 'SYS_ADMIN']",
                "container app: runAsNonRoot must not be false",
                "container app: seLinuxOptions.type 'spc_t'",
                # the init container, which sets nothing, is checked too
                "container setup: allowPrivilegeEscalation must be false",
                "container setup: runAsNonRoot must be true",
                "container setup: seccompProfile must be RuntimeDefault or Localhost",
            ],
            id="restricted",
        ),
        pytest.param(
            boards_violations,
            [
                "automountServiceAccountToken must be false",
                "enableServiceLinks must be false",
                "container app: readOnlyRootFilesystem must be true",
                "container app: resources.requests lacks ['cpu', 'memory']",
                "container app: the boards image runs as 1000:1000, not 0:None",
            ],
            id="boards",
        ),
    ],
)
def test_check_rejects_a_bad_pod(check: Callable[[Obj], list[str]], expected: list[str]) -> None:
    text = "\n".join(check(BAD_POD))
    missing = [message for message in expected if message not in text]
    assert not missing, f"{missing} not in:\n{text}"


def test_one_missing_field_is_enough_to_fail(rendered: dict[str, list[Obj]]) -> None:
    """Each field of the hardened worker matters: dropping any one of them is a violation."""
    worker = find(rendered["production"], "Deployment", "boards-worker")
    assert restricted_violations(worker) == []
    for path in (
        ("securityContext", "runAsNonRoot"),
        ("securityContext", "seccompProfile"),
        ("containers", 0, "securityContext", "allowPrivilegeEscalation"),
        ("containers", 0, "securityContext", "capabilities"),
        ("initContainers", 0, "securityContext", "allowPrivilegeEscalation"),
    ):
        broken = copy.deepcopy(worker)
        node = broken["spec"]["template"]["spec"]
        for step in path[:-1]:
            node = node[step]
        del node[path[-1]]
        assert restricted_violations(broken), f"removing {path} went unnoticed"


def test_namespace_check_rejects_an_unlabelled_namespace(rendered: dict[str, list[Obj]]) -> None:
    objects = copy.deepcopy(rendered["production"])
    namespace = find(objects, "Namespace", "boards")
    del namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
    elsewhere = copy.deepcopy(BAD_POD)
    elsewhere["metadata"]["namespace"] = "default"
    text = "\n".join(namespace_violations([*objects, elsewhere]))
    assert "Namespace/boards: label pod-security.kubernetes.io/enforce must be restricted" in text
    assert "Pod/bad: namespace 'default' is not a rendered Namespace" in text


def test_the_docs_manifests_are_valid_and_restricted() -> None:
    """The Kubernetes objects among the YAML of docs/kubernetes.md (the downgrade Job; the
    others are kustomization excerpts) would be admitted in `boards`."""
    blocks = re.findall(
        r"^( *)```yaml\n(.*?)^\1```", (ROOT / "docs/kubernetes.md").read_text(), re.M | re.S
    )
    objects = [yaml.safe_load(textwrap.dedent(block)) for _, block in blocks]
    objects = [obj for obj in objects if "apiVersion" in obj]
    assert objects, "docs/kubernetes.md has no Kubernetes object in a yaml block"
    for obj in objects:
        assert schema_errors(obj) == []
        assert restricted_violations(obj) == []
        assert boards_violations(obj) == []
