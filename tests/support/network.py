"""A VPC in moto's EC2 the way a user sets one up for ElastiCache: subnets, a cache subnet group, security groups."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import boto3

__all__ = ["Network", "make_network"]


@dataclass(frozen=True)
class Network:
    """What `make_network` made (ids as moto gave them)."""

    vpc_id: str
    subnet_group: str
    redis_group: str    # the target's group: 6379 from 10.0.0.0/16 and from the worker's group
    worker_group: str   # the worker's own group (referenced by the rule above)
    closed_group: str   # a group of the same VPC with only SSH open
    other_vpc_group: str  # a group of another VPC, 6379 open to all


def make_network(endpoint: str, region: str) -> Network:
    """Two VPCs in moto; the app's with two subnets, a cache subnet group and three groups; the other with one."""
    ec2: Any = boto3.client("ec2", region_name=region, endpoint_url=endpoint)
    ec: Any = boto3.client("elasticache", region_name=region, endpoint_url=endpoint)
    tag = uuid.uuid4().hex[:8]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    other = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)]
    name = f"app-subnets-{tag}"
    ec.create_cache_subnet_group(CacheSubnetGroupName=name, CacheSubnetGroupDescription="app", SubnetIds=subnets)

    def group(vpc_id: str, what: str) -> str:
        return str(ec2.create_security_group(GroupName=f"{what}-{tag}", Description=what, VpcId=vpc_id)["GroupId"])

    redis_sg, worker_sg, closed_sg, other_sg = (group(vpc, "redis"), group(vpc, "worker"), group(vpc, "closed"),
                                                group(other, "other"))
    ec2.authorize_security_group_ingress(GroupId=redis_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]},
        {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "UserIdGroupPairs": [{"GroupId": worker_sg}]},
    ])
    ec2.authorize_security_group_ingress(GroupId=closed_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}])
    ec2.authorize_security_group_ingress(GroupId=other_sg, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    return Network(vpc, name, redis_sg, worker_sg, closed_sg, other_sg)
