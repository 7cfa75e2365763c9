"""Reachability decisions: which inbound rule admits which source on the target's port (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from elasticache_migrate.errors import PlanError
from elasticache_migrate.preflight.reachability import (
    IngressRule,
    SecurityGroup,
    Source,
    admits,
    parse_groups,
    reachability_findings,
    source_problem,
    worker_addresses,
)
from tests.support.plans import plan

APP = Source("10.0.1.0/24", "the app")
WORKER = Source("10.0.9.17/32", "this worker")


def tcp(low: int, high: int, *, cidrs: tuple[str, ...] = (), groups: tuple[str, ...] = ()) -> IngressRule:
    return IngressRule("tcp", low, high, cidrs, groups)


@pytest.mark.parametrize(("rule", "source", "ok"), [
    (tcp(6379, 6379, cidrs=("10.0.0.0/16",)), APP, True),             # the rule's CIDR contains the source's
    (tcp(6379, 6379, cidrs=("10.0.1.0/25",)), APP, False),            # … not the other way round
    (tcp(6000, 7000, cidrs=("10.0.1.0/24",)), APP, True),             # a range containing the port
    (tcp(6380, 6380, cidrs=("0.0.0.0/0",)), APP, False),              # another port
    (IngressRule("-1", None, None, ("10.0.0.0/8",)), APP, True),      # all traffic
    (IngressRule("udp", 6379, 6379, ("10.0.0.0/8",)), APP, False),    # not TCP
    (IngressRule("6", 6379, 6379, ("10.0.0.0/8",)), APP, True),       # TCP by number
    (tcp(6379, 6379, groups=("sg-0aaaaaaaaaaaaaaaa",)), Source("sg-0aaaaaaaaaaaaaaaa", "the app"), True),
    (tcp(6379, 6379, groups=("sg-0bbbbbbbbbbbbbbbb",)), Source("sg-0aaaaaaaaaaaaaaaa", "the app"), False),
    (tcp(6379, 6379, cidrs=("10.0.0.0/8",)), Source("sg-0aaaaaaaaaaaaaaaa", "the app"), False),  # CIDR ≠ group
    (tcp(6379, 6379, groups=("sg-0aaaaaaaaaaaaaaaa",)), APP, False),
    (tcp(6379, 6379, cidrs=("2001:db8::/32",)), Source("2001:db8:1::/48", "the app"), True),
    (tcp(6379, 6379, cidrs=("0.0.0.0/0",)), Source("2001:db8:1::/48", "the app"), False),  # IPv4 rule, IPv6 host
])
def test_a_rule_admits_a_source(rule: IngressRule, source: Source, ok: bool) -> None:
    assert admits(rule, 6379, source) is ok


def test_no_rule_for_the_app_blocks_with_the_rule_to_add() -> None:
    groups = [SecurityGroup("sg-0123456789abcdef0", "vpc-1", (tcp(22, 22, cidrs=("10.0.0.0/8",)),))]
    found = reachability_findings(groups, 6379, [APP, Source("sg-0aaaaaaaaaaaaaaaa", "the app")], vpc_id="vpc-1")
    assert [f.severity for f in found] == ["block", "block"]
    assert "no inbound rule of sg-0123456789abcdef0 admits the app (10.0.1.0/24) on TCP port 6379" in found[0].seen
    assert found[0].todo == ("aws ec2 authorize-security-group-ingress --group-id sg-0123456789abcdef0 --protocol tcp "
                             "--port 6379 --cidr 10.0.1.0/24")
    assert found[1].todo.endswith("--port 6379 --source-group sg-0aaaaaaaaaaaaaaaa")


def test_any_group_and_any_worker_address_will_do() -> None:
    groups = [SecurityGroup("sg-00000001", "vpc-1", ()),
              SecurityGroup("sg-00000002", "vpc-1", (tcp(6379, 6379, cidrs=("10.0.0.0/16",)),))]
    worker = Source("172.17.0.1/32", "this worker", ("10.0.9.17/32",))   # docker0 first, the VPC address second
    found = reachability_findings(groups, 6379, [APP, worker], vpc_id="vpc-1")
    assert [f.severity for f in found] == ["info", "info"]
    assert found[1].seen == "this worker (10.0.9.17/32) may connect to port 6379: sg-00000002 admits it (tcp 6379-6379)"


def test_the_worker_unreachable_says_verify_would_fail() -> None:
    groups = [SecurityGroup("sg-00000001", "vpc-1", (tcp(6379, 6379, cidrs=("10.0.1.0/24",)),))]
    (ok, block) = reachability_findings(groups, 6379, [APP, WORKER])
    assert ok.severity == "info" and block.severity == "block"
    assert "this worker could not verify the new cluster" in block.seen and "--cidr 10.0.9.17/32" in block.todo


def test_a_group_in_another_vpc_blocks() -> None:
    groups = [SecurityGroup("sg-00000001", "vpc-other", (tcp(6379, 6379, cidrs=("0.0.0.0/0",)),))]
    (vpc, ok) = reachability_findings(groups, 6379, [APP], vpc_id="vpc-app", subnet_group="app-subnets")
    assert vpc.severity == "block"
    assert vpc.seen == ("security group sg-00000001 is in vpc-other, but the cache subnet group app-subnets is in "
                        "vpc-app: ElastiCache cannot attach it")
    assert "Name=vpc-id,Values=vpc-app" in vpc.todo
    assert ok.severity == "info"


def test_a_prefix_list_rule_is_a_warning_not_a_block() -> None:
    groups = [SecurityGroup("sg-00000001", None, (IngressRule("tcp", 6379, 6379, prefix_lists=("pl-123",)),))]
    (f,) = reachability_findings(groups, 6379, [APP])
    assert f.severity == "warn" and "prefix-list rule of sg-00000001 might" in f.seen


def test_parse_groups_reads_describe_security_groups() -> None:
    response: dict[str, Any] = {"SecurityGroups": [{
        "GroupId": "sg-00000001", "VpcId": "vpc-1", "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "IpRanges": [{"CidrIp": "10.0.0.0/16"}],
             "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}], "UserIdGroupPairs": [{"GroupId": "sg-00000002",
                                                                                   "UserId": "123456789012"}],
             "PrefixListIds": []},
            {"IpProtocol": "-1", "IpRanges": [], "UserIdGroupPairs": [{"GroupId": "sg-00000003"}]},
        ]}]}
    (g,) = parse_groups(response)
    assert g == SecurityGroup("sg-00000001", "vpc-1", (
        IngressRule("tcp", 6379, 6379, ("10.0.0.0/16", "2001:db8::/32"), ("sg-00000002",)),
        IngressRule("-1", None, None, (), ("sg-00000003",))))


@pytest.mark.parametrize(("value", "ok"), [
    ("10.0.1.0/24", True), ("10.0.1.7", True), ("2001:db8::/32", True), ("sg-0123456789abcdef0", True),
    ("sg-01234567", True), ("sg-xyz", False), ("10.0.1.0/33", False), ("app-hosts", False),
])
def test_plan_sources_are_cidrs_or_group_ids(value: str, ok: bool) -> None:
    assert (source_problem(value) is None) is ok
    if ok:
        assert plan(target={"app_sources": [value], "worker_source": value}).target.app_sources == [value]
    else:
        with pytest.raises(PlanError, match="app_sources"):
            plan(target={"app_sources": ["10.0.0.0/8", value]})
        with pytest.raises(PlanError, match="worker_source"):
            plan(target={"worker_source": value})


def test_worker_addresses_are_this_hosts_non_loopback_ipv4() -> None:
    for cidr in worker_addresses():
        assert cidr.endswith("/32") and not cidr.startswith("127.")
