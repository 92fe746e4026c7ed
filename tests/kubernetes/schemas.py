"""Validating rendered objects against the Kubernetes OpenAPI schemas of one release.

Built-in kinds use the schemas `kubernetes-validate` ships (strict: unknown fields fail). KEDA's
kinds use the CRDs vendored in schemas/ (see schemas/README.md), made strict the same way.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

#: The Kubernetes release validated against (kubectl on these machines is 1.32).
KUBERNETES_VERSION = "1.32"
CRD_DIR = Path(__file__).resolve().parent / "schemas"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def _strict(schema: Any) -> Any:
    """A copy of a CRD's structural schema in which unknown fields are errors, as kubectl's
    strict field validation (the API server would prune them silently otherwise)."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict openAPIV3Schema, for every served version of each CRD."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                # metadata is `type: object` in CRDs; the API server checks it as ObjectMeta.
                schema["properties"]["metadata"] = {"type": "object"}
                found[(f"{group}/{version['name']}", kind)] = _strict(schema)
    return found


@cache
def _object_meta_validator() -> jsonschema.protocols.Validator:
    folder = f"v{KUBERNETES_VERSION}.0-local-strict"
    defs_file = (
        resources.files(kubernetes_validate)
        / "kubernetes-json-schema"
        / folder
        / "_definitions.json"
    )
    # Its own $id makes the file's absolute refs ("/api/_definitions.json#/$defs/...") resolve.
    definitions = json.loads(defs_file.read_text())
    return jsonschema.Draft202012Validator({**definitions, "$ref": f"#/$defs/{OBJECT_META}"})


def _messages(errors: Any) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in errors
    ]


def schema_errors(obj: dict[str, Any]) -> list[str]:
    """Every reason the API server of KUBERNETES_VERSION would refuse `obj`; [] if none."""
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    crd = crd_schemas().get(key)
    if crd is not None:
        errors = _messages(jsonschema.Draft7Validator(crd).iter_errors(obj))
        meta = obj.get("metadata", {})
        errors += [f"metadata.{e}" for e in _messages(_object_meta_validator().iter_errors(meta))]
        return errors
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(p) for p in error.absolute_path) or "<root>"
        return [f"{path}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [error.message]
    return []
