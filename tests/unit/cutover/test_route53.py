"""The Route 53 backend: record names and selection, and its INSYNC waiter against botocore's Stubber (which
checks every request against the real API model)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from elasticache_migrate.cutover import config_backend
from elasticache_migrate.cutover.route53 import Route53Cname, change_batch, cname_record, normalize_name
from elasticache_migrate.errors import CutoverError
from tests.unit.cutover.plans import plan


def rr(name: str, value: str = "old.example.com", ttl: int = 300, **more: Any) -> dict[str, Any]:
    return {"Name": name, "Type": "CNAME", "TTL": ttl, "ResourceRecords": [{"Value": value}], **more}


def test_route53_names_compare_like_route53() -> None:
    assert normalize_name("Redis.Example.COM.") == normalize_name("redis.example.com") == "redis.example.com"
    assert normalize_name("\\052.example.com.") == "*.example.com"


def test_route53_picks_the_cname_and_refuses_routing_policies() -> None:
    sets = [{"Name": "redis.example.com.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "10.0.0.1"}]},
            rr("redis.example.com."), rr("redis2.example.com.")]
    assert cname_record(sets, "redis.example.com") == sets[1]
    assert cname_record(sets[2:], "redis.example.com") is None
    with pytest.raises(ValueError, match="routing policy"):
        cname_record([rr("redis.example.com.", SetIdentifier="a", Weight=1)], "redis.example.com")
    assert change_batch("UPSERT", "r.example.com", "h", 60, "c")["Changes"][0]["ResourceRecordSet"] == {
        "Name": "r.example.com", "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": "h"}]}


def _route53(monkeypatch: pytest.MonkeyPatch, attempts: int = 3) -> tuple[Route53Cname, Stubber]:
    import elasticache_migrate.cutover.route53 as route53

    monkeypatch.setattr(route53, "WAIT_DELAY_SECONDS", 0)
    monkeypatch.setattr(route53, "WAIT_MAX_ATTEMPTS", attempts)
    backend = config_backend(plan(backend="route53", route53_zone_id="/hostedzone/Z123", route53_ttl=30,
                                  route53_record="redis.example.com"))
    assert isinstance(backend, Route53Cname)
    return backend, Stubber(backend.r53)


def _change(status: str) -> dict[str, Any]:
    return {"ChangeInfo": {"Id": "/change/C1", "Status": status, "SubmittedAt": "2026-01-01T00:00:00Z"}}


def test_route53_upsert_waits_through_pending_until_insync(monkeypatch: pytest.MonkeyPatch) -> None:
    backend, stub = _route53(monkeypatch)
    stub.add_response("change_resource_record_sets", _change("PENDING"), {
        "HostedZoneId": "Z123", "ChangeBatch": change_batch("UPSERT", "redis.example.com", "new.cache.amazonaws.com",
                                                            30, backend.comment)})
    stub.add_response("get_change", _change("PENDING"), {"Id": "/change/C1"})
    stub.add_response("get_change", _change("INSYNC"), {"Id": "/change/C1"})
    with stub:
        backend.write("new.cache.amazonaws.com")
    stub.assert_no_pending_responses()


def test_route53_never_insync_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    backend, stub = _route53(monkeypatch, attempts=2)
    stub.add_response("change_resource_record_sets", _change("PENDING"))
    stub.add_response("get_change", _change("PENDING"))
    stub.add_response("get_change", _change("PENDING"))
    with stub, pytest.raises(CutoverError, match="change /change/C1 not INSYNC"):
        backend.write("new.cache.amazonaws.com")


def test_route53_restore_puts_back_the_old_target_and_ttl_as_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    backend, stub = _route53(monkeypatch)
    listing = {"ResourceRecordSets": [rr("redis.example.com.", "old.example.com.", 900)], "IsTruncated": False,
               "MaxItems": "10"}
    stub.add_response("list_resource_record_sets", listing)
    with stub:
        assert backend.read() == "old.example.com"          # trailing dot dropped for comparisons
    assert backend.state() == {"ttl": 900, "target": "old.example.com."}
    backend.use_state(backend.state())
    stub.add_response("change_resource_record_sets", _change("INSYNC"), {
        "HostedZoneId": "Z123", "ChangeBatch": change_batch("UPSERT", "redis.example.com", "old.example.com.", 900,
                                                            backend.comment)})
    stub.add_response("get_change", _change("INSYNC"))
    with stub:
        backend.write("old.example.com")
    stub.assert_no_pending_responses()


def test_route53_delete_sends_the_record_exactly_as_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    backend, stub = _route53(monkeypatch)
    record = rr("redis.example.com.", "new.cache.amazonaws.com", 30)
    stub.add_response("list_resource_record_sets", {"ResourceRecordSets": [record], "IsTruncated": False,
                                                    "MaxItems": "10"})
    stub.add_response("change_resource_record_sets", _change("INSYNC"), {"HostedZoneId": "Z123", "ChangeBatch": {
        "Comment": backend.comment, "Changes": [{"Action": "DELETE", "ResourceRecordSet": record}]}})
    stub.add_response("get_change", _change("INSYNC"))
    with stub:
        backend.write(None)
    stub.assert_no_pending_responses()
