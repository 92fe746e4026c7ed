"""Rendering the kustomize overlays in deploy/kubernetes and walking what they hold."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("dev", "production", "autoscaling")
NAMESPACE = "boards"
#: The image name the base uses; each overlay sets the real one.
BACKEND_IMAGE = "boards-backend"
#: The label that carries a release's version; it names the migration Job.
VERSION_LABEL = "app.kubernetes.io/version"

Obj = dict[str, Any]


def kubectl() -> str:
    found = shutil.which("kubectl")
    if not found:
        pytest.fail("kubectl is not on PATH (kustomize 5.x is built into kubectl >= 1.27)")
    return found


@cache
def _render(path: Path) -> str:
    result = subprocess.run(
        [kubectl(), "kustomize", str(path)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {path} failed:\n{result.stderr}", pytrace=False)
    return result.stdout


def copy_with_image(into: Path, overlay: str, image: Obj, *, version: str | None = None) -> Path:
    """A copy of deploy/kubernetes under `into` whose `overlay` has `image` as the entry for
    boards-backend in its `images:` list and, if given, `version` as its version label; returns
    the copy's overlays directory (autoscaling there builds on the changed production)."""
    tree = into / "kubernetes"
    shutil.copytree(DEPLOY, tree)
    path = tree / "overlays" / overlay / "kustomization.yaml"
    kustomization = yaml.safe_load(path.read_text())
    others = [i for i in kustomization["images"] if i["name"] != BACKEND_IMAGE]
    kustomization["images"] = [{"name": BACKEND_IMAGE, **image}, *others]
    if version is not None:
        kustomization["labels"][0]["pairs"][VERSION_LABEL] = version
    path.write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return tree / "overlays"


def render(overlay: str | Path) -> list[Obj]:
    """The objects `kubectl kustomize` renders for an overlay name or a kustomization dir."""
    path = overlay if isinstance(overlay, Path) else DEPLOY / "overlays" / overlay
    return [doc for doc in yaml.safe_load_all(_render(path)) if doc]


def ref(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise LookupError(f"no {kind}/{name} in the render")


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] == kind]


def pod_template(obj: Obj) -> Obj | None:
    """The pod template (metadata + spec) of a workload, the pod itself, or None."""
    kind = obj["kind"]
    if kind == "Pod":
        return {"metadata": obj.get("metadata", {}), "spec": obj["spec"]}
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        template: Obj = obj["spec"]["template"]
        return template
    if kind == "CronJob":
        cron_template: Obj = obj["spec"]["jobTemplate"]["spec"]["template"]
        return cron_template
    return None


def pod_specs(objects: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    """(workload, pod spec) for every object that makes pods."""
    for obj in objects:
        template = pod_template(obj)
        if template is not None:
            yield obj, template["spec"]


def all_containers(spec: Obj) -> Iterator[Obj]:
    """Init, regular and ephemeral containers of a pod spec."""
    for field in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(field) or []


def is_backend(container: Obj) -> bool:
    """A container of the boards image (whatever registry and tag an overlay gives it)."""
    image = str(container.get("image", ""))
    return image.rsplit("/", 1)[-1].split("@")[0].split(":")[0] == BACKEND_IMAGE


def settings(objects: list[Obj]) -> dict[str, str]:
    """The BOARDS_* settings of the generated ConfigMap boards-config-<hash>."""
    (config,) = [
        obj
        for obj in of_kind(objects, "ConfigMap")
        if obj["metadata"]["name"].startswith("boards-config")
    ]
    return dict(config["data"])


def image_map(objects: list[Obj], local: dict[str, str]) -> dict[str, str]:
    """{rendered image reference: local image} for every container in `objects`."""
    mapping = {}
    for _, spec in pod_specs(objects):
        for container in all_containers(spec):
            image = container["image"]
            repository = image.rsplit("/", 1)[-1].split("@")[0].split(":")[0]
            if repository not in local:
                pytest.fail(f"no local image stands for {image!r}")
            mapping[image] = local[repository]
    return mapping
