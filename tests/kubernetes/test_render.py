"""Every overlay renders with `kubectl kustomize`, every object is valid for the Kubernetes
release in schemas.KUBERNETES_VERSION, and the manifests agree with the settings they carry."""

from __future__ import annotations

import copy
import inspect
import re
from pathlib import Path

import pytest
from boards.queue import QUEUE_NAME
from dramatiq.brokers.redis import RedisBroker

from tests.kubernetes.manifests import (
    OVERLAYS,
    ROOT,
    VERSION_LABEL,
    Obj,
    all_containers,
    copy_with_image,
    find,
    of_kind,
    pod_specs,
    ref,
    render,
    settings,
)
from tests.kubernetes.schemas import crd_schemas, schema_errors

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
DIGEST_REF = re.compile(r"@sha256:[0-9a-f]{64}$")
FAKE_DIGEST = "sha256:" + "ab" * 32
DOCS = ROOT / "docs" / "kubernetes.md"


def job(objects: list[Obj]) -> Obj:
    (migrate,) = of_kind(objects, "Job")
    return migrate


# -- schemas ------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_is_valid_for_the_kubernetes_schemas(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    objects = rendered[overlay]
    assert objects, f"{overlay} renders nothing"
    errors = {ref(obj): schema_errors(obj) for obj in objects}
    assert {k: v for k, v in errors.items() if v} == {}


def test_vendored_crds_cover_every_custom_kind(rendered: dict[str, list[Obj]]) -> None:
    custom = {
        (obj["apiVersion"], obj["kind"])
        for objects in rendered.values()
        for obj in objects
        if obj["apiVersion"].startswith("keda.sh/")
    }
    assert custom == {
        ("keda.sh/v1alpha1", "ScaledObject"),
        ("keda.sh/v1alpha1", "TriggerAuthentication"),
    }
    assert custom <= set(crd_schemas())


def test_schema_check_rejects_bad_objects(rendered: dict[str, list[Obj]]) -> None:
    api = copy.deepcopy(find(rendered["dev"], "Deployment", "boards-api"))
    api["spec"]["replica"] = 2  # a typo
    api["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    assert schema_errors(api)

    service = copy.deepcopy(find(rendered["dev"], "Service", "boards-api"))
    service["spec"]["ports"][0]["port"] = "eighty"
    assert schema_errors(service)

    scaled = copy.deepcopy(find(rendered["autoscaling"], "ScaledObject", "boards-worker"))
    scaled["spec"]["minReplicas"] = 1  # HPA's name, not KEDA's
    del scaled["spec"]["scaleTargetRef"]["name"]
    errors = "\n".join(schema_errors(scaled))
    assert "'minReplicas' was unexpected" in errors
    assert "'name' is a required property" in errors

    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert schema_errors(unknown)


# -- what the manifests promise -------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_probes_service_and_disruption_budget(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    objects = rendered[overlay]
    config = settings(objects)
    api = find(objects, "Deployment", "boards-api")
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["api"]
    assert config["BOARDS_MIGRATE_ON_START"] == "false"  # the Job migrates, not each API pod
    (port,) = container["ports"]
    assert port["containerPort"] == int(config["BOARDS_API_PORT"])
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    if overlay != "autoscaling":
        assert api["spec"]["replicas"] == 2

    labels = api["spec"]["template"]["metadata"]["labels"]
    service = find(objects, "Service", "boards-api")
    assert all(labels[k] == v for k, v in service["spec"]["selector"].items())
    budget = find(objects, "PodDisruptionBudget", "boards-api")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_map_port_to_the_same_container_port(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    """Clients use the port the container listens on (8800, 5432, 6379); the simulation,
    which has no kube-proxy, relies on it too."""
    objects = rendered[overlay]
    for service in of_kind(objects, "Service"):
        selector = service["spec"]["selector"]
        pods = [
            spec
            for workload, spec in pod_specs(objects)
            if selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert pods, f"{ref(service)} selects no pod"
        named = {
            p.get("name"): p["containerPort"]
            for spec in pods
            for c in spec["containers"]
            for p in c.get("ports") or []
        }
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert named.get(target, target) == port["port"], ref(service)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_grace_period_metrics_port_and_disruption_budget(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    objects = rendered[overlay]
    worker = find(objects, "Deployment", "boards-worker")["spec"]["template"]["spec"]
    (container,) = worker["containers"]
    assert container["args"] == ["worker"]
    assert container["livenessProbe"]["exec"]["command"] == ["boards", "healthcheck"]
    assert container["startupProbe"]["exec"]["command"] == ["boards", "healthcheck"]
    shutdown = float(settings(objects)["BOARDS_WORKER_SHUTDOWN_TIMEOUT"])
    # The worker needs the shutdown timeout to hand jobs back, then exits; 5 s of margin at
    # least before the kubelet's SIGKILL (measured in test_simulation: well under that).
    assert worker["terminationGracePeriodSeconds"] >= shutdown + 5
    (port,) = container["ports"]
    assert (port["name"], port["containerPort"]) == (
        "metrics",
        int(settings(objects)["BOARDS_WORKER_METRICS_PORT"]),
    )
    budget = find(objects, "PodDisruptionBudget", "boards-worker")
    labels = find(objects, "Deployment", "boards-worker")["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["maxUnavailable"] == 1
    (wait,) = worker["initContainers"]
    assert wait["name"] == "wait-for-schema"
    assert "alembic" in " ".join(wait["command"]) and "(head)" in " ".join(wait["command"])


def migration_job_errors(objects: list[Obj]) -> list[str]:
    """The migration Job must be named after the version label, be a DNS-1123 subdomain (an
    object name) and fit the pods' job-name label, where the Job controller copies it (63)."""
    migrate = job(objects)
    name = migrate["metadata"]["name"]
    version = migrate["metadata"]["labels"][VERSION_LABEL]
    errors = []
    if name != f"boards-migrate-{version}":
        errors.append(f"{name}: not named after the version label {version!r}")
    if not DNS_SUBDOMAIN.match(name) or len(name) > 63:
        errors.append(f"{name}: not a DNS-1123 subdomain of at most 63 characters")
    return errors


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_migration_job_named_after_the_release(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    migrate = job(rendered[overlay])
    (container,) = migrate["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate"]
    assert migration_job_errors(rendered[overlay]) == []
    assert migrate["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_migration_job_check_rejects_a_name_cut_from_a_digest(
    rendered: dict[str, list[Obj]],
) -> None:
    objects = copy.deepcopy(rendered["production"])
    migrate = job(objects)
    migrate["metadata"]["name"] = "boards-migrate-0.1.0@sha256"  # the image reference cut at `:`
    assert len(migration_job_errors(objects)) == 2


@pytest.mark.parametrize("overlay", ["production", "autoscaling"])
def test_production_runs_a_digest(rendered: dict[str, list[Obj]], overlay: str) -> None:
    """A tag can be moved; a digest cannot: what was tested is what runs."""
    for _, spec in pod_specs(rendered[overlay]):
        for container in all_containers(spec):
            assert DIGEST_REF.search(container["image"]), container["image"]
            # Immutable: the node's copy is the image; no pull on every start.
            assert container["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize("overlay", ["production", "autoscaling"])
@pytest.mark.parametrize(
    ("release", "expected"),
    [
        ({"newTag": "1.4.2", "digest": FAKE_DIGEST}, f":1.4.2@{FAKE_DIGEST}"),
        ({"digest": FAKE_DIGEST}, f"boards-backend@{FAKE_DIGEST}"),
        ({"newTag": "1.4.2"}, "boards-backend:1.4.2"),
    ],
    ids=["tag+digest", "digest", "tag"],
)
def test_every_form_of_release_names_a_valid_job(
    tmp_path: Path, overlay: str, release: dict[str, str], expected: str
) -> None:
    """Tag and digest, digest alone, tag alone: the same valid Job name, the image as set."""
    image = {"newName": "ghcr.io/owner/boards-backend", **release}
    overlays = copy_with_image(tmp_path, "production", image, version="1.4.2")
    objects = render(overlays / overlay)
    assert {ref(o): schema_errors(o) for o in objects if schema_errors(o)} == {}
    assert migration_job_errors(objects) == []
    assert job(objects)["metadata"]["name"] == "boards-migrate-1.4.2"
    images = {c["image"] for _, spec in pod_specs(objects) for c in all_containers(spec)}
    assert len(images) == 1 and images.pop().endswith(expected)


def test_a_long_version_still_fits(tmp_path: Path) -> None:
    image = {"newName": "ghcr.io/o/boards-backend", "digest": FAKE_DIGEST}
    version = "1.4.2-rc.1-sha-" + "a" * 33  # 48 characters: the most a Job name leaves
    overlays = copy_with_image(tmp_path, "production", image, version=version)
    assert migration_job_errors(render(overlays / "production")) == []


@pytest.mark.parametrize("overlay", ["production", "autoscaling"])
def test_api_reads_its_tokens_from_the_secret(rendered: dict[str, list[Obj]], overlay: str) -> None:
    spec = find(rendered[overlay], "Deployment", "boards-api")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    env = {var["name"]: var for var in container["env"]}
    assert env["BOARDS_API_TOKENS_FILE"]["value"] == "/etc/boards/api-tokens/tokens"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    (name,) = [n for n, m in mounts.items() if m["mountPath"] == "/etc/boards/api-tokens"]
    assert mounts[name]["readOnly"] is True
    secret = volumes[name]["secret"]
    assert secret["secretName"] == "boards-api-tokens"
    assert secret["items"] == [{"key": "tokens", "path": "tokens"}]
    assert secret["defaultMode"] == 0o440  # the boards group (fsGroup), nobody else
    # Probes stay open: liveness and readiness need no token.
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert "httpHeaders" not in container["readinessProbe"]["httpGet"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_come_from_the_configmap_and_urls_from_the_secret(
    rendered: dict[str, list[Obj]], overlay: str
) -> None:
    objects = rendered[overlay]
    secrets = {obj["metadata"]["name"] for obj in of_kind(objects, "Secret")}
    for workload, spec in pod_specs(objects):
        for container in all_containers(spec):
            for var in container.get("env") or []:
                if var["name"].endswith("_URL") or "PASSWORD" in var["name"]:
                    key_ref = (var.get("valueFrom") or {}).get("secretKeyRef")
                    assert key_ref, f"{ref(workload)}: {var['name']} is not from a Secret"
                    if overlay == "dev":
                        assert key_ref["name"] in secrets  # generated, hash-suffixed
                    else:
                        assert key_ref["name"] == "boards-secrets"  # created out of band
    if overlay == "dev":
        assert len(secrets) == 1
    else:
        assert secrets == set(), f"{overlay} must carry no Secret"


def test_production_secret_keys_are_documented(rendered: dict[str, list[Obj]]) -> None:
    docs = DOCS.read_text()
    keys = {
        var["valueFrom"]["secretKeyRef"]["key"]
        for _, spec in pod_specs(rendered["autoscaling"])
        for c in all_containers(spec)
        for var in c.get("env") or []
        if "secretKeyRef" in (var.get("valueFrom") or {})
    }
    auth = find(rendered["autoscaling"], "TriggerAuthentication", "boards-redis")
    keys |= {target["key"] for target in auth["spec"]["secretTargetRef"]}
    assert keys == {"database-url", "redis-url", "redis-address", "redis-password"}
    for key in keys:
        assert f"`{key}`" in docs
    assert "`boards-api-tokens`" in docs and "`tokens`" in docs


def test_dev_redis_is_append_only(rendered: dict[str, list[Obj]]) -> None:
    redis = find(rendered["dev"], "StatefulSet", "boards-redis")
    (container,) = redis["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == args[args.index("--dir") + 1]


# -- autoscaling ----------------------------------------------------------------------------------


def test_keda_watches_the_list_dramatiq_queues_into(rendered: dict[str, list[Obj]]) -> None:
    """dramatiq's RedisBroker pushes message ids onto `<namespace>:<queue name>`."""
    namespace = inspect.signature(RedisBroker.__init__).parameters["namespace"].default
    objects = rendered["autoscaling"]
    scaled = find(objects, "ScaledObject", "boards-worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "boards-worker"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == f"{namespace}:{QUEUE_NAME}" == "dramatiq:boards-jobs"
    find(objects, "TriggerAuthentication", trigger["authenticationRef"]["name"])


def test_autoscalers_own_the_replica_counts(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["autoscaling"]
    for name in ("boards-api", "boards-worker"):
        assert "replicas" not in find(objects, "Deployment", name)["spec"]
    hpa = find(objects, "HorizontalPodAutoscaler", "boards-api")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "boards-api",
    }
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    api = find(objects, "Deployment", "boards-api")["spec"]["template"]["spec"]
    assert api["containers"][0]["resources"]["requests"]["cpu"]  # what utilisation is of
