"""Print the backend image at a glance: size, size over its base, layers, user, entrypoint,
command, health check, labels and dive's layer-efficiency score.

    python tools/image/inspect_image.py [--tag boards-backend:local] [--json]

The size budget is judged on the official python:3.12-slim base. When the image was built on a
stand-in base (no registry here), the projection is: official base size + what our Dockerfile
adds over the base it was built on (the layers above the base are the same on either base).
Exit codes: 0 printed (and within budget), 1 over budget, 2 bad usage or no such image.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

MB = 1_000_000
BUDGET_BYTES = 200 * MB  # the documented hard limit (docs/image.md)
# Uncompressed size of the official python:3.12-slim-bookworm image (docker image inspect).
OFFICIAL_BASE_BYTES = 124 * MB
STANDIN_LABEL = "org.boards.standin"
BASE_LABEL = "org.opencontainers.image.base.name"  # set by the Dockerfile


def docker_json(*args: str) -> Any:
    out = subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def history(image: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["docker", "history", "--no-trunc", "--human=false", "--format", "{{json .}}", image],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def dive_stats(image: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "dive.json"
        subprocess.run(
            ["dive", "--source", "docker", "--json", str(report), image],
            check=True,
            capture_output=True,
            env={**os.environ, "CI": "true"},
        )
        data: dict[str, Any] = json.loads(report.read_text())["image"]
        return data


def collect(image: str) -> dict[str, Any]:
    info = docker_json("image", "inspect", image)[0]
    config = info["Config"]
    labels = config.get("Labels") or {}
    base = labels.get(BASE_LABEL, "")
    base_info = docker_json("image", "inspect", base)[0] if base else None
    base_labels = (base_info or {}).get("Config", {}).get("Labels") or {}
    base_bytes = base_info["Size"] if base_info else 0
    base_layers = len(base_info["RootFS"]["Layers"]) if base_info else 0
    rows = list(reversed(history(image)))  # oldest first
    base_rows = len(history(base)) if base else 0
    added = info["Size"] - base_bytes
    standin = base_labels.get(STANDIN_LABEL) == "true"
    projected = (OFFICIAL_BASE_BYTES if standin else base_bytes) + added
    dive = dive_stats(image)
    return {
        "image": image,
        "id": info["Id"],
        "size_bytes": info["Size"],
        "base": base,
        "base_is_standin": standin,
        "base_bytes": base_bytes,
        "added_bytes": added,
        "projected_on_official_base_bytes": projected,
        "budget_bytes": BUDGET_BYTES,
        "layers_total": len(info["RootFS"]["Layers"]),
        "layers_added": len(info["RootFS"]["Layers"]) - base_layers,
        "added_steps": [
            {"bytes": int(r["Size"]), "created_by": r["CreatedBy"]} for r in rows[base_rows:]
        ],
        "user": config.get("User", ""),
        "workdir": config.get("WorkingDir", ""),
        "entrypoint": config.get("Entrypoint"),
        "cmd": config.get("Cmd"),
        "exposed_ports": sorted((config.get("ExposedPorts") or {}).keys()),
        "healthcheck": config.get("Healthcheck"),
        "labels": labels,
        "efficiency": dive.get("efficiencyScore"),
        "wasted_bytes": dive.get("inefficientBytes"),
    }


def short(created_by: str, width: int = 90) -> str:
    text = " ".join(created_by.replace("/bin/sh -c #(nop) ", "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def show(facts: dict[str, Any]) -> None:
    def mb(n: int) -> str:
        return f"{n / MB:.1f} MB"

    standin = facts["base_is_standin"]
    base_note = " (STAND-IN base: projected on the official one)" if standin else ""
    within = facts["projected_on_official_base_bytes"] < BUDGET_BYTES
    verdict = "within budget" if within else "OVER BUDGET"
    print(f"image        {facts['image']}  {facts['id'][:19]}")
    print(f"size         {mb(facts['size_bytes'])}")
    print(f"base         {facts['base'] or '?'}  {mb(facts['base_bytes'])}")
    print(f"added        {mb(facts['added_bytes'])} in {facts['layers_added']} layers")
    print(
        f"on official  {mb(facts['projected_on_official_base_bytes'])}{base_note}: {verdict} "
        f"(budget {mb(BUDGET_BYTES)})"
    )
    print(f"efficiency   {facts['efficiency']:.4f}  wasted {mb(facts['wasted_bytes'] or 0)} (dive)")
    print(f"user         {facts['user']}   workdir {facts['workdir']}")
    print(f"entrypoint   {facts['entrypoint']}   cmd {facts['cmd']}")
    print(f"ports        {', '.join(facts['exposed_ports'])}")
    if facts["healthcheck"]:
        print(f"healthcheck  {facts['healthcheck']['Test']}")
    for key in sorted(facts["labels"]):
        if key.startswith("org.opencontainers"):
            print(f"label        {key}={facts['labels'][key]}")
    print("layers added over the base:")
    for step in facts["added_steps"]:
        print(f"  {mb(step['bytes']):>9}  {short(step['created_by'])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default="boards-backend:local")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    try:
        facts = collect(args.tag)
    except subprocess.CalledProcessError as exc:
        print(f"inspect: {' '.join(exc.cmd[:3])}… failed: {exc.stderr.strip()}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(facts, indent=2))
    else:
        show(facts)
    return 0 if facts["projected_on_official_base_bytes"] < BUDGET_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
