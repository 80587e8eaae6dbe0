"""The alias lock held in the registry, the audit trail of promotions and --expect-current, on a
real MLflow registry (sqlite). Real concurrency over HTTP and PostgreSQL:
tests/tracking/test_tracking_server.py."""

import time

import pytest

from mtl_tf.tracking import list_models, promote
from mtl_tf.tracking.promotion import AliasLock, PromotionConflict, audit_trail, lock_name
from tests.tracking.test_promotion import export, holder, model, name, promotion_tags, register  # noqa: F401


def test_a_held_lock_refuses_a_promotion_naming_its_holder_and_changes_nothing(store, client, model):  # noqa: F811
    promote(model, 1, tracking_uri=store["uri"])
    with AliasLock(client, model, "champion") as lock:
        with pytest.raises(PromotionConflict, match=rf"another promotion of alias 'champion' of '{model}' is under "
                                                    rf"way \(held by {lock.holder} since .*nothing was changed"):
            promote(model, 3, tracking_uri=store["uri"])
    assert holder(client, model) == 1 and promotion_tags(client, model, 3) == {}
    promote(model, 3, tracking_uri=store["uri"])  # released: the next one goes through
    assert holder(client, model) == 3
    assert [m["name"] for m in list_models(store["uri"]) if m["name"].startswith("mtl-lock.")] == []


def test_a_lock_whose_holder_died_is_taken_over_after_its_lease(store, client, model):  # noqa: F811
    dead = AliasLock(client, model, "champion", lease_s=0.5)
    dead.__enter__()  # never released: its process died
    with pytest.raises(PromotionConflict, match="under way"):
        promote(model, 1, tracking_uri=store["uri"])
    time.sleep(0.6)
    assert promote(model, 1, tracking_uri=store["uri"]).version == 1
    dead.__exit__(None, None, None)  # a late release does not free another's lock
    assert client.search_registered_models(f"name = '{lock_name(model, 'champion')}'") == []


def test_the_audit_trail_chains_every_promotion_of_an_alias(store, client, model):  # noqa: F811
    for version in (1, 4, 3):
        promote(model, version, tracking_uri=store["uri"])
    promote(model, 2, tracking_uri=store["uri"], force=True, reason="rollback drill")
    promote(model, 3, alias="challenger", tracking_uri=store["uri"])
    trail = audit_trail(client, model, "champion")
    assert [(e["n"], e["version"], e["previous"], e["forced"]) for e in trail] == [
        (1, 1, None, False), (2, 4, 1, False), (3, 3, 4, False), (4, 2, 3, True)]
    assert trail[-1]["reason"] == "rollback drill" and trail[-1]["version"] == holder(client, model)
    for entry in trail:
        assert promotion_tags(client, model, entry["version"])["promotion.champion.at"] <= trail[-1]["at"]
    assert [e["version"] for e in audit_trail(client, model, "challenger")] == [3]


def test_expect_current_refuses_when_the_alias_points_elsewhere(store, client, model):  # noqa: F811
    with pytest.raises(PromotionConflict, match="points at no version, not version 2 as expected"):
        promote(model, 1, tracking_uri=store["uri"], expect_current=2)
    promote(model, 1, tracking_uri=store["uri"], expect_current="none")
    with pytest.raises(PromotionConflict, match="points at version 1, not no version as expected"):
        promote(model, 3, tracking_uri=store["uri"], expect_current="none")
    assert promote(model, 3, tracking_uri=store["uri"], expect_current=1).previous == 1
    with pytest.raises(ValueError, match="expect_current must be a version number or 'none'; received 'latest'"):
        promote(model, 3, tracking_uri=store["uri"], expect_current="latest")
