"""A kubelet on the local Docker engine: rendered pod specs run as containers, as a node would.

What maps to what:

* image (each reference, by tag or by digest, mapped to a local image: no registry),
  `command` -> ENTRYPOINT, `args` -> CMD (Docker, like the kubelet, drops the image's CMD when
  only the entrypoint is given), `workingDir`;
* env: `value` (with `$(VAR)` expansion), ConfigMap and Secret key refs, `envFrom`, the pod's
  name and namespace from `fieldRef`; `$(VAR)` in command and args;
* securityContext, the pod's merged with the container's: runAsUser/runAsGroup -> user,
  fsGroup and supplementalGroups -> extra groups, runAsNonRoot checked against the effective
  uid (the image's USER when none is given, which must then be numeric, as the kubelet
  requires), readOnlyRootFilesystem -> read-only root, capabilities -> cap drop/add,
  allowPrivilegeEscalation: false -> no-new-privileges, seccomp RuntimeDefault -> Docker's
  default profile;
* resources.limits -> memory and CPU limits (requests only matter to a scheduler);
* emptyDir and PersistentVolumeClaims -> a tmpfs volume per pod (mode 0777, group fsGroup, as
  an emptyDir or kind's local-path volume), shared by the pod's containers, gone with the pod;
* Services -> network aliases: each pod is reachable by the names of the Services that select
  it. There is no kube-proxy, so a Service's port must equal its target port;
* probes: httpGet to the containerPort published on 127.0.0.1 (the kubelet probes the pod's
  IP), exec through `docker exec`, tcpSocket by connecting; each with its initial delay,
  period, timeout and thresholds (see Probe);
* termination: preStop (sleep or exec), then the image's stop signal and SIGKILL after what is
  left of terminationGracePeriodSeconds, which is what `docker stop -t` does.

Not simulated (a real cluster shows those): scheduling, restarts (a container that exits is a
test failure here), kube-proxy, DNS search domains beyond the names below, volume types other
than emptyDir/PVC, NetworkPolicies (all pods share one open network; test_netpol.py evaluates
the policies instead).
"""

from __future__ import annotations

import base64
import contextlib
import math
import re
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import docker
import httpx
import pytest
from docker.models.containers import Container as DockerContainer
from docker.types import Mount

from tests.kubernetes.manifests import Obj, find, of_kind

KUBE_VERSION = "1.32"
_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_QUANTITY = re.compile(r"^([0-9.]+)([A-Za-z]*)$")
_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
}


def quantity(value: str | int) -> float:
    """A Kubernetes quantity in base units: `256Mi` -> bytes, `500m` -> 0.5 (CPU)."""
    text = str(value)
    if text.endswith("m"):
        return float(text[:-1]) / 1000
    match = _QUANTITY.match(text)
    if not match or match[2] not in _UNITS:
        raise ValueError(f"quantity {value!r} is not supported")
    return float(match[1]) * _UNITS[match[2]]


def expand(text: str, env: Mapping[str, str]) -> str:
    """The kubelet's `$(VAR)` expansion: defined names are replaced, `$$` is a `$`, and an
    unknown `$(NAME)` stays as it is."""

    def replace(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        return env.get(match[1], match[0])

    return _VAR.sub(replace, text)


@dataclass(frozen=True)
class Probe:
    """A probe's timing: the spec's, or the API's default where the spec says nothing."""

    initial_delay: float
    period: float
    timeout: float
    success_threshold: int
    failure_threshold: int

    @classmethod
    def of(cls, spec: Obj) -> Probe:
        return cls(
            initial_delay=float(spec.get("initialDelaySeconds", 0)),
            period=float(spec.get("periodSeconds", 10)),
            timeout=float(spec.get("timeoutSeconds", 1)),
            success_threshold=int(spec.get("successThreshold", 1)),
            failure_threshold=int(spec.get("failureThreshold", 3)),
        )


class Cluster:
    """The rendered objects: ConfigMaps, Secrets and Services the pods refer to."""

    def __init__(self, objects: list[Obj]) -> None:
        self.objects = objects

    def data(self, kind: str, name: str, *, optional: bool = False) -> dict[str, str]:
        try:
            obj = find(self.objects, kind, name)
        except LookupError:
            if optional:
                return {}
            pytest.fail(f"{kind}/{name} is referenced but not rendered (kubelet: config error)")
        if kind == "Secret":
            decoded = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
            return decoded | dict(obj.get("stringData") or {})
        return dict(obj.get("data") or {})

    def services_for(self, labels: Mapping[str, str]) -> list[Obj]:
        selected = []
        for service in of_kind(self.objects, "Service"):
            selector = service["spec"].get("selector") or {}
            if selector and all(labels.get(k) == v for k, v in selector.items()):
                selected.append(service)
        return selected


@dataclass
class Container:
    """One running (or exited) container of a simulated pod."""

    pod: Pod
    spec: Obj
    docker: DockerContainer
    started: float = 0.0  # time.monotonic() at start

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    def reload(self) -> dict[str, Any]:
        self.docker.reload()
        return dict(self.docker.attrs)

    def status(self) -> str:
        return str(self.reload()["State"]["Status"])

    def logs(self, tail: int | str = "all") -> str:
        return str(self.docker.logs(tail=tail).decode(errors="replace"))

    def port_number(self, port: int | str) -> int:
        """A probe's or Service's `port`: a number, or the name of a containerPort."""
        if isinstance(port, int):
            return port
        for declared in self.spec.get("ports") or []:
            if declared.get("name") == port:
                return int(declared["containerPort"])
        pytest.fail(f"container {self.name} has no port named {port!r}")

    def host_port(self, port: int | str) -> int:
        """The 127.0.0.1 port a containerPort is published on."""
        number = self.port_number(port)
        bindings = self.reload()["NetworkSettings"]["Ports"].get(f"{number}/tcp") or []
        if not bindings:
            pytest.fail(f"container {self.name}: port {number} is not a declared containerPort")
        return int(bindings[0]["HostPort"])

    def wait_exit(self, timeout: float) -> int:
        try:
            return int(self.docker.wait(timeout=timeout)["StatusCode"])
        except Exception as exc:  # requests' ReadTimeout: still running
            pytest.fail(
                f"{self.pod.name}/{self.name} did not exit within {timeout:.0f}s ({exc!r}):\n"
                f"{self.logs(tail=40)}"
            )

    def assert_running(self) -> None:
        state = self.reload()["State"]
        if state["Status"] != "running":
            pytest.fail(
                f"{self.pod.name}/{self.name} is {state['Status']} (exit {state['ExitCode']},"
                f" OOM killed: {state['OOMKilled']}); the kubelet would restart it:\n"
                f"{self.logs(tail=40)}"
            )


@dataclass
class Pod:
    name: str
    template: Obj
    kubelet: Kubelet
    volumes: dict[str, str] = field(default_factory=dict)  # pod volume name -> docker volume
    init: list[Container] = field(default_factory=list)
    containers: list[Container] = field(default_factory=list)

    @property
    def spec(self) -> Obj:
        return dict(self.template["spec"])

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.template.get("metadata") or {}).get("labels") or {})

    def container(self, name: str | None = None) -> Container:
        for c in self.containers:
            if name is None or c.name == name:
                return c
        raise LookupError(f"{self.name} has no container {name!r}")

    def start(self, *, init_timeout: float = 120) -> None:
        """Run the init containers one by one to exit 0, then start the containers."""
        for spec in self.spec.get("initContainers") or []:
            c = self.kubelet.create_container(self, spec, init=True)
            self.init.append(c)
            c.docker.start()
            code = c.wait_exit(init_timeout)
            if code != 0:
                pytest.fail(f"{self.name}: init container {c.name} exited {code}:\n{c.logs()}")
        for spec in self.spec["containers"]:
            c = self.kubelet.create_container(self, spec, init=False)
            self.containers.append(c)
            c.docker.start()
            c.started = time.monotonic()

    def terminate(self) -> dict[str, tuple[int, float]]:
        """Delete the pod as the kubelet does: preStop hooks, then the stop signal and SIGKILL
        once terminationGracePeriodSeconds (counted from the start of it all) is used up.
        Returns {container: (exit code, seconds from the stop signal to exit)}."""
        grace = float(self.spec.get("terminationGracePeriodSeconds", 30))
        begun = time.monotonic()
        for c in self.containers:
            hook = ((c.spec.get("lifecycle") or {}).get("preStop")) or {}
            if "sleep" in hook:
                time.sleep(float(hook["sleep"]["seconds"]))
            elif "exec" in hook:
                self.kubelet.exec(c, hook["exec"]["command"], timeout=grace)
            elif hook:
                pytest.fail(f"preStop {sorted(hook)} is not simulated")
        results = {}
        for c in self.containers:
            left = max(0, math.ceil(grace - (time.monotonic() - begun)))
            signalled = time.monotonic()
            c.docker.stop(timeout=left)
            code = c.wait_exit(left + 10)
            results[c.name] = (code, time.monotonic() - signalled)
        return results


class Kubelet:
    """Runs pods of `cluster` on the Docker network `network`; removes everything it made."""

    def __init__(
        self,
        client: docker.DockerClient,
        network: str,
        cluster: Cluster,
        images: Mapping[str, str],
        *,
        prefix: str = "k8s-sim",
        namespace: str = "boards",
    ) -> None:
        self.client = client
        self.network = network
        self.cluster = cluster
        self.images = dict(images)
        self.prefix = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.namespace = namespace
        self.pods: list[Pod] = []
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe-exec")

    # -- pods ----------------------------------------------------------------------------------

    def pod(self, name: str, template: Obj, claims: list[Obj] | None = None) -> Pod:
        """A pod (not started) from a pod template; `claims` are a StatefulSet's
        volumeClaimTemplates, whose volumes the pod gets as `<claim>` mounts."""
        if template["spec"].get("enableServiceLinks") is not False:
            pytest.fail(f"{name}: enableServiceLinks is on; Service env links are not simulated")
        pod = Pod(name=name, template=template, kubelet=self)
        fs_group = (template["spec"].get("securityContext") or {}).get("fsGroup")
        for volume in template["spec"].get("volumes") or []:
            if "emptyDir" in volume:
                size = volume["emptyDir"].get("sizeLimit")
                pod.volumes[volume["name"]] = self._volume(
                    f"{name}-{volume['name']}", size, fs_group
                )
            else:
                pytest.fail(f"{name}: volume {volume['name']} {sorted(volume)} is not simulated")
        for claim in claims or []:
            claim_name = claim["metadata"]["name"]
            size = claim["spec"]["resources"]["requests"]["storage"]
            pod.volumes[claim_name] = self._volume(f"{claim_name}-{name}", size, fs_group)
        self.pods.append(pod)
        return pod

    def replicas(self, workload: Obj, count: int | None = None) -> list[Pod]:
        """The pods a Deployment (`name-<hash>`) or StatefulSet (`name-0`...) would make."""
        spec = workload["spec"]
        name = workload["metadata"]["name"]
        count = spec.get("replicas", 1) if count is None else count
        if workload["kind"] == "StatefulSet":
            return [
                self.pod(f"{name}-{i}", spec["template"], spec.get("volumeClaimTemplates"))
                for i in range(count)
            ]
        return [self.pod(f"{name}-{uuid.uuid4().hex[:5]}", spec["template"]) for _ in range(count)]

    def run_job(self, job: Obj) -> Pod:
        """One pod of a Job run to completion (exit 0) within activeDeadlineSeconds. A real
        Job retries up to backoffLimit times; here the first failure fails the test."""
        spec = job["spec"]
        pod = self.pod(f"{job['metadata']['name']}-{uuid.uuid4().hex[:5]}", spec["template"])
        deadline = float(spec.get("activeDeadlineSeconds", 600))
        pod.start(init_timeout=deadline)
        (c,) = pod.containers
        code = c.wait_exit(deadline)
        if code != 0:
            pytest.fail(f"Job {job['metadata']['name']}: pod exited {code}:\n{c.logs()}")
        return pod

    # -- containers ----------------------------------------------------------------------------

    def _volume(self, name: str, size: str | None, gid: int | None) -> str:
        options = "mode=0777" + (f",size={int(quantity(size))}" if size else "")
        options += f",gid={gid}" if gid is not None else ""
        volume = self.client.volumes.create(
            name=f"{self.prefix}-{name}",
            driver="local",
            driver_opts={"type": "tmpfs", "device": "tmpfs", "o": options},
            labels={"org.boards.k8s-sim": self.prefix},
        )
        return str(volume.name)

    def _env(self, pod: Pod, spec: Obj) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in spec.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if key in source:
                    ref = source[key]
                    data = self.cluster.data(kind, ref["name"], optional=ref.get("optional", False))
                    env.update({prefix + k: v for k, v in data.items()})
        for var in spec.get("env") or []:
            name = var["name"]
            if "value" in var:
                env[name] = expand(str(var["value"]), env)
                continue
            source = var.get("valueFrom") or {}
            for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                if key in source:
                    ref = source[key]
                    data = self.cluster.data(kind, ref["name"], optional=ref.get("optional", False))
                    if ref["key"] in data:
                        env[name] = data[ref["key"]]
                    elif not ref.get("optional"):
                        pytest.fail(f"{pod.name}: {kind}/{ref['name']} has no key {ref['key']!r}")
            if "fieldRef" in source:
                path = source["fieldRef"]["fieldPath"]
                fields = {"metadata.name": pod.name, "metadata.namespace": self.namespace}
                if path not in fields:
                    pytest.fail(f"fieldRef {path} is not simulated")
                env[name] = fields[path]
            if "resourceFieldRef" in source:
                pytest.fail("resourceFieldRef is not simulated")
        return env

    def _user(self, pod: Pod, spec: Obj, image: str, ctx: Obj) -> str | None:
        uid, gid = ctx.get("runAsUser"), ctx.get("runAsGroup")
        image_user = str(self.client.images.get(image).attrs["Config"].get("User") or "0")
        image_uid, _, image_gid = image_user.partition(":")
        if uid is None:
            if ctx.get("runAsNonRoot") and not image_uid.isdigit():
                pytest.fail(f"{pod.name}/{spec['name']}: image has non-numeric user {image_user!r}")
            uid = int(image_uid) if image_uid.isdigit() else None
        if ctx.get("runAsNonRoot") and uid == 0:
            pytest.fail(f"{pod.name}/{spec['name']}: runAsNonRoot and the image runs as root")
        if uid is None:
            return None
        group = gid if gid is not None else (image_gid or None)
        return f"{uid}:{group}" if group is not None else str(uid)

    def create_container(self, pod: Pod, spec: Obj, *, init: bool) -> Container:
        pod_ctx = pod.spec.get("securityContext") or {}
        inherited = ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile", "seLinuxOptions")
        ctx = {k: pod_ctx[k] for k in inherited if k in pod_ctx} | (
            spec.get("securityContext") or {}
        )
        rendered = spec["image"]
        if rendered not in self.images:
            pytest.fail(f"no local image for {rendered!r} (known: {sorted(self.images)})")
        image = self.images[rendered]

        env = self._env(pod, spec)
        command = [expand(str(a), env) for a in spec.get("command") or []] or None
        args = [expand(str(a), env) for a in spec.get("args") or []] or None

        caps = ctx.get("capabilities") or {}
        security_opt = []
        if ctx.get("allowPrivilegeEscalation") is False:
            security_opt.append("no-new-privileges:true")
        seccomp = (ctx.get("seccompProfile") or {}).get("type")
        if seccomp == "Unconfined":
            security_opt.append("seccomp=unconfined")
        elif seccomp not in (None, "RuntimeDefault"):
            pytest.fail(f"seccompProfile {seccomp} is not simulated")
        groups = [pod_ctx["fsGroup"]] if "fsGroup" in pod_ctx else []
        groups += list(pod_ctx.get("supplementalGroups") or [])

        mounts = []
        for mount in spec.get("volumeMounts") or []:
            if mount.get("subPath") or mount.get("subPathExpr"):
                pytest.fail("subPath mounts are not simulated")
            mounts.append(
                Mount(
                    target=mount["mountPath"],
                    source=pod.volumes[mount["name"]],
                    type="volume",
                    read_only=bool(mount.get("readOnly")),
                    no_copy=True,  # an emptyDir starts empty: no copy of the image's files
                )
            )
        limits = (spec.get("resources") or {}).get("limits") or {}
        aliases = [] if init else self._aliases(pod)
        container = self.client.containers.create(
            image,
            name=f"{self.prefix}-{pod.name}-{spec['name']}",
            hostname=pod.name,
            entrypoint=command,
            command=args,
            environment=env,
            working_dir=spec.get("workingDir"),
            user=self._user(pod, spec, image, ctx),
            group_add=[str(g) for g in groups] or None,
            read_only=bool(ctx.get("readOnlyRootFilesystem")),
            privileged=bool(ctx.get("privileged")),
            cap_drop=caps.get("drop"),
            cap_add=caps.get("add"),
            security_opt=security_opt or None,
            mounts=mounts,
            mem_limit=int(quantity(limits["memory"])) if "memory" in limits else None,
            nano_cpus=int(quantity(limits["cpu"]) * 1e9) if "cpu" in limits else None,
            ports=None
            if init
            else {
                f"{p['containerPort']}/tcp": ("127.0.0.1", None) for p in spec.get("ports") or []
            },
            network=self.network,
            networking_config={
                self.network: self.client.api.create_endpoint_config(aliases=aliases or None)
            },
            labels={"org.boards.k8s-sim": self.prefix},
            detach=True,
        )
        return Container(pod=pod, spec=spec, docker=container)

    def _aliases(self, pod: Pod) -> list[str]:
        names = []
        for service in self.cluster.services_for(pod.labels):
            name = service["metadata"]["name"]
            names += [name, f"{name}.{self.namespace}", f"{name}.{self.namespace}.svc"]
            names.append(f"{name}.{self.namespace}.svc.cluster.local")
        return names

    # -- probes --------------------------------------------------------------------------------

    def exec(self, c: Container, command: list[str], *, timeout: float) -> tuple[int | None, str]:
        """`docker exec` as the container's user; (exit code or None on timeout, output)."""
        exec_id = self.client.api.exec_create(c.docker.id, command)["Id"]
        future = self._pool.submit(self.client.api.exec_start, exec_id)
        try:
            output = future.result(timeout=timeout).decode(errors="replace")
        except FutureTimeout:
            return None, f"timed out after {timeout:.0f}s"
        return int(self.client.api.exec_inspect(exec_id)["ExitCode"]), output

    def probe_once(self, c: Container, probe: Obj) -> tuple[bool, str]:
        """One attempt of a probe, as the kubelet makes it; (passed, what happened)."""
        timeout = Probe.of(probe).timeout
        if "httpGet" in probe:
            get = probe["httpGet"]
            if get.get("scheme", "HTTP") != "HTTP":
                pytest.fail("HTTPS probes are not simulated")
            url = f"http://127.0.0.1:{c.host_port(get['port'])}{get.get('path', '/')}"
            headers = {"User-Agent": f"kube-probe/{KUBE_VERSION}", "Accept": "*/*"}
            headers |= {h["name"]: h["value"] for h in get.get("httpHeaders") or []}
            try:
                response = httpx.get(url, headers=headers, timeout=timeout)
            except httpx.HTTPError as exc:
                return False, f"GET {get.get('path', '/')}: {exc!r}"
            detail = f"GET {get.get('path', '/')} -> {response.status_code} {response.text[:300]}"
            return 200 <= response.status_code < 400, detail
        if "exec" in probe:
            code, output = self.exec(c, probe["exec"]["command"], timeout=timeout)
            return code == 0, f"exec {probe['exec']['command']} -> {code}: {output.strip()[:300]}"
        if "tcpSocket" in probe:
            port = c.host_port(probe["tcpSocket"]["port"])
            try:
                socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
            except OSError as exc:
                return False, f"tcp {port}: {exc}"
            return True, f"tcp {port}: connected"
        pytest.fail(f"probe {sorted(probe)} is not simulated")

    def _run_probe(
        self,
        c: Container,
        kind: str,
        *,
        until: Callable[[int, int], bool],
        give_up: Callable[[int], bool],
        deadline: float | None = None,
    ) -> float:
        """Probe every period from the initial delay on; return the seconds since the
        container started once `until(successes in a row, attempts)` holds."""
        probe = c.spec[kind]
        timing = Probe.of(probe)
        due = c.started + timing.initial_delay
        successes = failures = attempts = 0
        detail = ""
        while True:
            time.sleep(max(0.0, due - time.monotonic()))  # the probe's own period
            c.assert_running()
            ok, detail = self.probe_once(c, probe)
            attempts += 1
            successes, failures = (successes + 1, 0) if ok else (0, failures + 1)
            if until(successes, attempts):
                return time.monotonic() - c.started
            if give_up(failures):
                pytest.fail(
                    f"{c.pod.name}/{c.name}: {kind} failed {failures} times in a row (the "
                    f"kubelet acts now); last: {detail}\n{c.logs(tail=40)}"
                )
            if deadline is not None and time.monotonic() > deadline:
                pytest.fail(f"{c.pod.name}/{c.name}: {kind} still failing; last: {detail}")
            due += timing.period

    def started(self, c: Container) -> float:
        """Wait for the startupProbe like the kubelet: failureThreshold failures in a row and
        the container would be killed. Returns seconds from start until it passed."""
        if "startupProbe" not in c.spec:
            return 0.0
        threshold = Probe.of(c.spec["startupProbe"]).failure_threshold
        return self._run_probe(
            c, "startupProbe", until=lambda ok, _: ok >= 1, give_up=lambda bad: bad >= threshold
        )

    def alive(self, c: Container) -> float:
        """The livenessProbe passes (and fails fewer than failureThreshold times first)."""
        threshold = Probe.of(c.spec["livenessProbe"]).failure_threshold
        return self._run_probe(
            c, "livenessProbe", until=lambda ok, _: ok >= 1, give_up=lambda bad: bad >= threshold
        )

    def ready(self, c: Container, timeout: float = 60) -> float:
        """The readinessProbe passes successThreshold times in a row. A failing readiness
        probe never kills; the bound here stands for the Deployment's progress deadline."""
        needed = Probe.of(c.spec["readinessProbe"]).success_threshold
        return self._run_probe(
            c,
            "readinessProbe",
            until=lambda ok, _: ok >= needed,
            give_up=lambda _: False,
            deadline=time.monotonic() + timeout,
        )

    # -- the end -------------------------------------------------------------------------------

    def cleanup(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        for pod in self.pods:
            for c in pod.init + pod.containers:
                with contextlib.suppress(docker.errors.NotFound):
                    c.docker.remove(force=True)
        for pod in self.pods:
            for volume in pod.volumes.values():
                with contextlib.suppress(docker.errors.NotFound):
                    self.client.volumes.get(volume).remove(force=True)
