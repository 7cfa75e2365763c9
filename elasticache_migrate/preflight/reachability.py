"""Reachability: do the target's security groups admit the Redis port from the app hosts and from this worker?

A cutover to an endpoint nobody can reach is an outage the verify step cannot see in advance, so preflight reads
the groups (``DescribeSecurityGroups``) and the subnet group's VPC (``DescribeCacheSubnetGroups``) and decides here:

- a group in another VPC than the subnet group's cannot be attached: block;
- each source (``target.app_sources``, ``target.worker_source`` or the worker's own addresses) must be admitted by
  at least one inbound rule of at least one group (ElastiCache applies their union): a rule admits ``port`` when
  its protocol is TCP (or all traffic, ``-1``) with a port range containing it, and its source contains the source:
  a CIDR rule containing the source's CIDR, or a rule referencing the source's security group;
- a source no rule admits blocks, with the ``aws ec2 authorize-security-group-ingress`` command that admits it.

Rules through managed prefix lists cannot be resolved here: they make a "cannot tell" warning, not a block.
Everything but `worker_addresses` is pure.
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from elasticache_migrate.plan import SG_ID, network_source_problem
from elasticache_migrate.preflight.findings import Finding

__all__ = [
    "SG_ID",
    "IngressRule",
    "SecurityGroup",
    "Source",
    "source_problem",
    "parse_groups",
    "admits",
    "reachability_findings",
    "worker_addresses",
]

CHECK = "network"
source_problem = network_source_problem
"""Why a plan's source entry is neither a CIDR nor a security group id (the plan's own validator)."""


@dataclass(frozen=True)
class IngressRule:
    """One inbound permission of a group: protocol (``tcp``, ``-1`` = all, ``udp``…), port range, sources."""

    protocol: str
    from_port: int | None
    to_port: int | None
    cidrs: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    prefix_lists: tuple[str, ...] = ()

    def covers(self, port: int) -> bool:
        """Whether the rule's protocol and ports include TCP ``port``."""
        if self.protocol == "-1":
            return True
        if self.protocol.lower() not in ("tcp", "6"):
            return False
        low = self.from_port if self.from_port is not None else 0
        high = self.to_port if self.to_port is not None else 65535
        return low <= port <= high


@dataclass(frozen=True)
class SecurityGroup:
    """A security group as DescribeSecurityGroups tells it."""

    group_id: str
    vpc_id: str | None
    rules: tuple[IngressRule, ...]


@dataclass(frozen=True)
class Source:
    """Where connections come from: a CIDR or a security group id, and whose they are ("the app", "this worker").

    ``alternatives``: other addresses of the same host (a worker with several interfaces); any one admitted will do.
    """

    value: str
    who: str
    alternatives: tuple[str, ...] = ()

    @property
    def is_group(self) -> bool:
        return self.value.startswith("sg-")

    def each(self) -> list[Source]:
        """This source and its alternatives, one value each."""
        return [Source(v, self.who) for v in (self.value, *self.alternatives)]

    def __str__(self) -> str:
        return ", ".join((self.value, *self.alternatives))


def parse_groups(response: Mapping[str, Any]) -> list[SecurityGroup]:
    """DescribeSecurityGroups' answer as typed values."""
    out = []
    for g in response.get("SecurityGroups", []):
        rules = []
        for p in g.get("IpPermissions", []):
            rules.append(IngressRule(
                protocol=str(p.get("IpProtocol", "-1")),
                from_port=p.get("FromPort"), to_port=p.get("ToPort"),
                cidrs=tuple([r["CidrIp"] for r in p.get("IpRanges", []) if "CidrIp" in r]
                            + [r["CidrIpv6"] for r in p.get("Ipv6Ranges", []) if "CidrIpv6" in r]),
                groups=tuple(pair["GroupId"] for pair in p.get("UserIdGroupPairs", []) if "GroupId" in pair),
                prefix_lists=tuple(pl["PrefixListId"] for pl in p.get("PrefixListIds", []) if "PrefixListId" in pl),
            ))
        out.append(SecurityGroup(str(g["GroupId"]), g.get("VpcId"), tuple(rules)))
    return out


def _contains(rule_cidr: str, source: str) -> bool:
    try:
        outer, inner = ipaddress.ip_network(rule_cidr, strict=False), ipaddress.ip_network(source, strict=False)
    except ValueError:
        return False
    return outer.version == inner.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def admits(rule: IngressRule, port: int, source: Source) -> bool:
    """Whether ``rule`` lets TCP ``port`` in from ``source``."""
    if not rule.covers(port):
        return False
    if source.is_group:
        return source.value in rule.groups
    return any(_contains(c, source.value) for c in rule.cidrs)


def _rule_to_add(group_id: str, port: int, source: Source) -> str:
    where = f"--source-group {source.value}" if source.is_group else f"--cidr {source.value}"
    if not source.is_group and ipaddress.ip_network(source.value, strict=False).version == 6:
        where = (f"--ip-permissions IpProtocol=tcp,FromPort={port},ToPort={port},"
                 f"Ipv6Ranges=[{{CidrIpv6={source.value}}}]")
        return f"aws ec2 authorize-security-group-ingress --group-id {group_id} {where}"
    return f"aws ec2 authorize-security-group-ingress --group-id {group_id} --protocol tcp --port {port} {where}"


def reachability_findings(groups: list[SecurityGroup], port: int, sources: Iterable[Source], *,
                          vpc_id: str | None = None, subnet_group: str | None = None) -> list[Finding]:
    """Block for each group outside the subnet group's VPC and each source no inbound rule admits on ``port``.

    Args:
        groups: The target's security groups (`parse_groups`), in the plan's order.
        port: ``target.port``.
        sources: The app hosts and the worker.
        vpc_id: The subnet group's VPC (None: unknown, not compared).
        subnet_group: Its name, for the words.

    Returns:
        Blocks with the rule to add as the remedy; a warn where a prefix-list rule may admit a source (not
        resolvable here); one info per admitted source.
    """
    out: list[Finding] = []
    if vpc_id is not None:
        for g in groups:
            if g.vpc_id is not None and g.vpc_id != vpc_id:
                out.append(Finding(CHECK, "block", f"security group {g.group_id} is in {g.vpc_id}, but the cache "
                                   f"subnet group {subnet_group} is in {vpc_id}: ElastiCache cannot attach it",
                                   f"use security groups of {vpc_id} in target.security_group_ids (aws ec2 "
                                   f"describe-security-groups --filters Name=vpc-id,Values={vpc_id})"))
    first = groups[0].group_id if groups else "sg-…"
    for src in sources:
        hit = next(((g, r, one) for one in src.each() for g in groups for r in g.rules if admits(r, port, one)),
                   None)
        if hit is not None:
            g, r, one = hit
            via = f"{'all traffic' if r.protocol == '-1' else f'tcp {r.from_port}-{r.to_port}'}"
            out.append(Finding(CHECK, "info", f"{src.who} ({one.value}) may connect to port {port}: {g.group_id} "
                               f"admits it ({via})"))
            continue
        maybe = [g.group_id for g in groups for r in g.rules if r.prefix_lists and r.covers(port)]
        if maybe:
            out.append(Finding(CHECK, "warn", f"no rule of {', '.join(g.group_id for g in groups)} names "
                               f"{src.who} ({src}) for port {port}; a prefix-list rule of "
                               f"{', '.join(sorted(set(maybe)))} might", "check that prefix list, or add: "
                               + _rule_to_add(first, port, src)))
            continue
        out.append(Finding(CHECK, "block", f"no inbound rule of {', '.join(g.group_id for g in groups)} admits "
                           f"{src.who} ({src}) on TCP port {port}: after the cutover "
                           + ("the app could not reach the new cluster" if src.who.startswith("the app")
                              else "this worker could not verify the new cluster"),
                           _rule_to_add(first, port, src)))
    return out


_SIOCGIFADDR = 0x8915


def worker_addresses() -> list[str]:
    """This host's IPv4 interface addresses (loopback left out), as /32 CIDRs: where its connections come from
    when it runs in the VPC (Linux; an empty list elsewhere)."""
    out: list[str] = []
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return out
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for name in names:
            try:
                packed = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
            except OSError:  # no IPv4 address on this interface
                continue
            ip = socket.inet_ntoa(packed[20:24])
            if not ipaddress.ip_address(ip).is_loopback:
                out.append(f"{ip}/32")
    return out
