"""NetworkPolicy semantics, evaluated offline on rendered objects.

Home-made because the analysers that do this (np-guard's netpol-analyzer, cyclonus) are Go
programs not available here, and checkov only checks that a policy exists. It follows the
networking.k8s.io/v1 rules: a pod selected by no policy of a direction is open in that
direction; once selected, only what some rule allows passes (the union of rules); traffic
passes when the source's egress and the destination's ingress both allow it. Named ports are
the destination pod's containerPorts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from tests.kubernetes.manifests import NAMESPACE, Obj, of_kind, pod_template, ref

NS_NAME_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace


@dataclass(frozen=True)
class Peer:
    """A pod (namespace, labels, named ports) or, with `ip`, an address outside the cluster."""

    name: str
    namespace: str = NAMESPACE
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)
    ip: str | None = None

    @property
    def all_namespace_labels(self) -> dict[str, str]:
        return {**self.namespace_labels, NS_NAME_LABEL: self.namespace}


def selects(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    """A label selector (matchLabels and matchExpressions) against labels; {} selects all."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def policy_types(policy: Obj) -> list[str]:
    spec = policy["spec"]
    if "policyTypes" in spec:
        return list(spec["policyTypes"])
    return ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]


def selecting(policies: list[Obj], pod: Peer, direction: str) -> list[Obj]:
    """The policies that isolate `pod` in `direction` ("Ingress" or "Egress")."""
    if pod.ip is not None:
        return []
    return [
        p
        for p in policies
        if p["metadata"].get("namespace", NAMESPACE) == pod.namespace
        and direction in policy_types(p)
        and selects(p["spec"].get("podSelector"), pod.labels)
    ]


def _peer_matches(rule_peer: Obj, policy_namespace: str, other: Peer) -> bool:
    if "ipBlock" in rule_peer:
        if other.ip is None:
            return False  # pod IPs are not modelled: the manifests select pods by labels
        block = rule_peer["ipBlock"]
        address = ipaddress.ip_address(other.ip)
        inside = address in ipaddress.ip_network(block["cidr"])
        return inside and not any(
            address in ipaddress.ip_network(c) for c in block.get("except") or []
        )
    if other.ip is not None:
        return False
    if "namespaceSelector" in rule_peer:
        if not selects(rule_peer["namespaceSelector"], other.all_namespace_labels):
            return False
    elif other.namespace != policy_namespace:
        return False
    return selects(rule_peer.get("podSelector"), other.labels)


def _port_matches(rule_ports: list[Obj] | None, port: int, protocol: str, dest: Peer) -> bool:
    if not rule_ports:
        return True
    for entry in rule_ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        wanted = entry.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str):
            if dest.ports.get(wanted) == port:
                return True
        elif int(wanted) <= port <= int(entry.get("endPort") or wanted):
            return True
    return False


def _allows(policy: Obj, direction: str, other: Peer, port: int, protocol: str, dest: Peer) -> bool:
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    namespace = policy["metadata"].get("namespace", NAMESPACE)
    for rule in policy["spec"].get(rules_key) or []:
        peers = rule.get(peers_key)
        if peers and not any(_peer_matches(p, namespace, other) for p in peers):
            continue
        if _port_matches(rule.get("ports"), port, protocol, dest):
            return True
    return False


def allowed(policies: list[Obj], src: Peer, dst: Peer, port: int, protocol: str = "TCP") -> bool:
    """Whether a connection from `src` to `dst`:`port` gets through."""
    egress = selecting(policies, src, "Egress")
    if egress and not any(_allows(p, "Egress", dst, port, protocol, dst) for p in egress):
        return False
    ingress = selecting(policies, dst, "Ingress")
    return not ingress or any(_allows(p, "Ingress", src, port, protocol, dst) for p in ingress)


def pods(objects: list[Obj]) -> Iterator[tuple[str, Peer]]:
    """(workload, Peer) for every pod template in the render."""
    namespaces = {o["metadata"]["name"]: o for o in of_kind(objects, "Namespace")}
    for obj in objects:
        template = pod_template(obj)
        if template is None:
            continue
        namespace = obj["metadata"].get("namespace", NAMESPACE)
        ns_labels = (namespaces.get(namespace, {}).get("metadata") or {}).get("labels") or {}
        ports = {
            p["name"]: p["containerPort"]
            for c in template["spec"]["containers"]
            for p in c.get("ports") or []
            if "name" in p
        }
        labels = (template.get("metadata") or {}).get("labels") or {}
        yield ref(obj), Peer(ref(obj), namespace, labels, ns_labels, ports)


def default_deny_gaps(objects: list[Obj], extra: Sequence[Peer] = ()) -> list[str]:
    """Every pod of the render (and each of `extra`, e.g. a pod someone adds later) must be
    selected by a policy with no rules for both directions: then only allow rules open it."""
    policies = of_kind(objects, "NetworkPolicy")
    gaps = []
    for where, pod in [*pods(objects), *((p.name, p) for p in extra)]:
        for direction, key in (("Ingress", "ingress"), ("Egress", "egress")):
            denying = [p for p in selecting(policies, pod, direction) if not p["spec"].get(key)]
            if not denying:
                gaps.append(f"{where}: no default-deny policy for {direction}")
    return gaps
