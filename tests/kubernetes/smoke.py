"""The smoke Job: smoke_client.py in the backend image, pushing jobs through the API Service.

The simulation runs it on the Docker network and the kind test applies it to the cluster, so
both push jobs the same way. It meets the restricted standard, like every pod in `boards`, and
carries the client label the network policies let through.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.kubernetes.manifests import NAMESPACE

CLIENT = Path(__file__).resolve().parent / "smoke_client.py"
NAME = "boards-smoke"


def smoke_job(image: str, *, api_url: str, jobs: int, timeout: float = 90) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": int(timeout) + 60,
            "template": {
                # A client of the API: the NetworkPolicies let it reach the Service.
                "metadata": {
                    "labels": {"app.kubernetes.io/name": NAME, "boards.dev/api-client": "true"}
                },
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 1000,
                        "runAsGroup": 1000,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "smoke",
                            "image": image,
                            "command": ["python", "-c", CLIENT.read_text()],
                            "env": [
                                {"name": "SMOKE_API_URL", "value": api_url},
                                {"name": "SMOKE_JOBS", "value": str(jobs)},
                                {"name": "SMOKE_TIMEOUT", "value": str(timeout)},
                            ],
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "32Mi"},
                                "limits": {"cpu": "500m", "memory": "64Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }


def summary(logs: str) -> dict[str, Any]:
    """The `SMOKE {json}` line the client prints last."""
    lines = [line for line in logs.splitlines() if line.startswith("SMOKE ")]
    assert lines, f"the smoke client printed no summary:\n{logs[-3000:]}"
    return dict(json.loads(lines[-1].removeprefix("SMOKE ")))
