"""Pod security, checked offline on rendered objects.

`restricted_violations` is the Kubernetes "restricted" Pod Security Standard (which includes
"baseline"), rule for rule as https://kubernetes.io/docs/concepts/security/pod-security-standards/
states it for the latest version; the API server enforces the same rules in a namespace
labelled `pod-security.kubernetes.io/enforce: restricted` (the CI kind job checks that too).
`boards_violations` adds this project's own rules on top.
"""

from __future__ import annotations

from typing import Any

from tests.kubernetes.manifests import Obj, all_containers, is_backend, pod_specs, ref

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
# Fields of a volume entry that are not its type.
_VOLUME_META = {"name"}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
APPARMOR_TYPES = {"RuntimeDefault", "Localhost"}
SECCOMP_TYPES = {"RuntimeDefault", "Localhost"}
#: The image's user (uid/gid 1000, `USER 1000:1000`).
BOARDS_UID = 1000


def _ctx(obj: Any) -> dict[str, Any]:
    return obj.get("securityContext") or {}


def restricted_violations(obj: Obj) -> list[str]:
    """Every rule of the restricted standard a workload's pod spec breaks."""
    bad: list[str] = []
    for workload, spec in pod_specs([obj]):
        where = ref(workload)
        pod_ctx = _ctx(spec)
        containers = list(all_containers(spec))

        # -- baseline ---------------------------------------------------------------------
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(field):
                bad.append(f"{where}: {field} must not be true (host namespaces)")
        for scope, ctx in [("pod", pod_ctx)] + [
            (f"container {c['name']}", _ctx(c)) for c in containers
        ]:
            if (ctx.get("windowsOptions") or {}).get("hostProcess"):
                bad.append(f"{where}: {scope}: windowsOptions.hostProcess must not be true")
            selinux = ctx.get("seLinuxOptions") or {}
            if selinux.get("type", "") not in SELINUX_TYPES:
                bad.append(f"{where}: {scope}: seLinuxOptions.type {selinux['type']!r}")
            if selinux.get("user") or selinux.get("role"):
                bad.append(f"{where}: {scope}: seLinuxOptions.user/role must not be set")
            apparmor = (ctx.get("appArmorProfile") or {}).get("type")
            if apparmor is not None and apparmor not in APPARMOR_TYPES:
                bad.append(f"{where}: {scope}: appArmorProfile {apparmor!r}")
            seccomp = (ctx.get("seccompProfile") or {}).get("type")
            if seccomp is not None and seccomp not in SECCOMP_TYPES:
                bad.append(
                    f"{where}: {scope}: seccompProfile {seccomp!r} (RuntimeDefault or Localhost)"
                )
            if ctx.get("runAsUser") == 0:
                bad.append(f"{where}: {scope}: runAsUser must not be 0")
            if ctx.get("runAsNonRoot") is False:
                bad.append(f"{where}: {scope}: runAsNonRoot must not be false")
        for sysctl in pod_ctx.get("sysctls") or []:
            if sysctl.get("name") not in SAFE_SYSCTLS:
                bad.append(f"{where}: sysctl {sysctl.get('name')!r} is not in the safe set")
        for volume in spec.get("volumes") or []:
            kinds = set(volume) - _VOLUME_META
            if "hostPath" in kinds:
                bad.append(f"{where}: volume {volume['name']}: hostPath volumes are forbidden")
            elif not kinds <= RESTRICTED_VOLUMES:
                bad.append(f"{where}: volume {volume['name']}: type {sorted(kinds)} not allowed")

        # -- per container: baseline and restricted -----------------------------------------
        for c in containers:
            name, ctx = f"container {c['name']}", _ctx(c)
            if ctx.get("privileged"):
                bad.append(f"{where}: {name}: privileged must not be true")
            if ctx.get("procMount", "Default") != "Default":
                bad.append(f"{where}: {name}: procMount must be Default")
            for port in c.get("ports") or []:
                if port.get("hostPort"):
                    bad.append(f"{where}: {name}: hostPort {port['hostPort']} is forbidden")
            if ctx.get("allowPrivilegeEscalation") is not False:
                bad.append(f"{where}: {name}: allowPrivilegeEscalation must be false")
            caps = ctx.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []):
                bad.append(f"{where}: {name}: capabilities.drop must include ALL")
            extra = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
            if extra:
                bad.append(
                    f"{where}: {name}: capabilities.add {sorted(extra)} (only NET_BIND_SERVICE)"
                )
            if ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is not True:
                bad.append(f"{where}: {name}: runAsNonRoot must be true (pod or container)")
            seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
            if seccomp not in SECCOMP_TYPES:
                bad.append(f"{where}: {name}: seccompProfile must be RuntimeDefault or Localhost")
    return bad


def boards_violations(obj: Obj) -> list[str]:
    """This project's rules on top of the restricted standard."""
    bad: list[str] = []
    for workload, spec in pod_specs([obj]):
        where = ref(workload)
        pod_ctx = _ctx(spec)
        if spec.get("automountServiceAccountToken") is not False:
            bad.append(f"{where}: automountServiceAccountToken must be false (no API access)")
        if spec.get("enableServiceLinks") is not False:
            bad.append(
                f"{where}: enableServiceLinks must be false (Service boards-api would inject "
                "BOARDS_API_PORT=tcp://...)"
            )
        for c in all_containers(spec):
            name, ctx = f"container {c['name']}", _ctx(c)
            if ctx.get("readOnlyRootFilesystem") is not True:
                bad.append(f"{where}: {name}: readOnlyRootFilesystem must be true")
            resources = c.get("resources") or {}
            for section in ("requests", "limits"):
                missing = {"cpu", "memory"} - set(resources.get(section) or {})
                if missing:
                    bad.append(f"{where}: {name}: resources.{section} lacks {sorted(missing)}")
            if is_backend(c):
                uid = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
                gid = ctx.get("runAsGroup", pod_ctx.get("runAsGroup"))
                if (uid, gid) != (BOARDS_UID, BOARDS_UID):
                    bad.append(
                        f"{where}: {name}: the boards image runs as 1000:1000, not {uid}:{gid}"
                    )
    return bad


def namespace_violations(objects: list[Obj]) -> list[str]:
    """Every namespaced object must live in a rendered Namespace that enforces restricted."""
    namespaces = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Namespace"}
    bad = [
        f"Namespace/{name}: label {ENFORCE_LABEL} must be restricted"
        for name, ns in namespaces.items()
        if (ns["metadata"].get("labels") or {}).get(ENFORCE_LABEL) != "restricted"
    ]
    for obj in objects:
        if obj["kind"] == "Namespace":
            continue
        namespace = obj["metadata"].get("namespace")
        if namespace not in namespaces:
            bad.append(f"{ref(obj)}: namespace {namespace!r} is not a rendered Namespace")
    return bad


#: A pod that breaks every rule above: the checks' own tests and the cluster's admission test
#: feed it in.
BAD_POD: Obj = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "bad", "namespace": "boards"},
    "spec": {
        "hostNetwork": True,
        "hostPID": True,
        "securityContext": {
            "runAsUser": 0,
            "sysctls": [{"name": "kernel.msgmax", "value": "65536"}],
            "seccompProfile": {"type": "Unconfined"},
        },
        "volumes": [
            {"name": "host", "hostPath": {"path": "/var/run/docker.sock"}},
            {"name": "nfs", "nfs": {"server": "nfs.example", "path": "/"}},
        ],
        "initContainers": [{"name": "setup", "image": "busybox"}],
        "containers": [
            {
                "name": "app",
                "image": "boards-backend:local",
                "ports": [{"containerPort": 8800, "hostPort": 8800}],
                "securityContext": {
                    "privileged": True,
                    "allowPrivilegeEscalation": True,
                    "runAsNonRoot": False,
                    "readOnlyRootFilesystem": False,
                    "capabilities": {"add": ["NET_ADMIN", "SYS_ADMIN"]},
                    "procMount": "Unmasked",
                    "seLinuxOptions": {"type": "spc_t"},
                },
            }
        ],
    },
}
