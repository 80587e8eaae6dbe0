import csv

import numpy as np
import pytest

from mtl_tf.data.synth import SYNTHESIZERS, synthesize
from mtl_tf.data.synth.fraud_signals import HEADER

LABELS = ("default_risk", "is_fraud", "account_takeover")


def _rows(paths):
    rows = []
    for path in paths:
        with open(path, newline="") as handle:
            rows += list(csv.reader(handle))[1:]
    return rows


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    paths = synthesize("fraud_signals", 20_000, tmp_path_factory.mktemp("synth"), seed=7)
    with open(paths[0], newline="") as handle:
        return list(csv.DictReader(handle))


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    first = synthesize("fraud_signals", 300, tmp_path / "a", seed=1, files=2, malformed=0.1)
    again = synthesize("fraud_signals", 300, tmp_path / "b", seed=1, files=2, malformed=0.1)
    other = synthesize("fraud_signals", 300, tmp_path / "c", seed=2, files=2, malformed=0.1)
    assert [p.name for p in first] == ["part-00000.csv", "part-00001.csv"]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    assert [p.read_bytes() for p in first] != [p.read_bytes() for p in other]
    assert len(_rows(first)) == 300


def test_columns_match_the_shipped_recipe():
    from mtl_tf.recipe.loader import load_recipe

    recipe = load_recipe("recipes/fraud_signals.yaml", check=False)
    needed = {f.source_column for f in recipe.data.features} | {t.label for t in recipe.tasks}
    assert needed | {recipe.data.split.key} <= set(HEADER)


def test_labels_are_rare_and_sometimes_missing(clean):
    rates = {}
    for label in LABELS:
        values = [row[label] for row in clean]
        assert set(values) == {"0", "1", ""}
        labelled = [v for v in values if v]
        rates[label] = labelled.count("1") / len(labelled)
        rates[label + "_missing"] = values.count("") / len(values)
    assert 0.03 <= rates["default_risk"] <= 0.05
    assert 0.01 <= rates["is_fraud"] <= 0.02
    assert 0.004 <= rates["account_takeover"] <= 0.01
    assert 0.2 <= rates["default_risk_missing"] <= 0.3
    assert 0.07 <= rates["account_takeover_missing"] <= 0.13


def test_customers_repeat_and_devices_are_high_cardinality(clean):
    customers = {row["customer_id"] for row in clean}
    assert len(customers) < len(clean) / 2
    devices = [row["device_fingerprint"] for row in clean if row["device_fingerprint"]]
    assert len(set(devices)) > 3000
    assert sum(1 for row in clean if row["income"] == "") > 0.05 * len(clean)


def test_fraud_happens_more_at_night(clean):
    def night_share(rows):
        return np.mean([int(row["timestamp"][11:13]) < 5 for row in rows])

    fraud = [row for row in clean if row["is_fraud"] == "1"]
    legit = [row for row in clean if row["is_fraud"] == "0"]
    assert night_share(fraud) > 2 * night_share(legit)


def test_labels_follow_the_features(clean):
    """A single visible signal already ranks each label well above chance."""

    def auc(label, score):
        rows = [row for row in clean if row[label]]
        y = np.array([row[label] == "1" for row in rows])
        s = np.array([score(row) for row in rows]) + np.random.default_rng(0).uniform(0, 1e-6, len(rows))
        ranks = np.argsort(np.argsort(s)) + 1
        return (ranks[y].sum() - y.sum() * (y.sum() + 1) / 2) / (y.sum() * (~y).sum())

    assert auc("default_risk", lambda r: float(r["balance"]) / float(r["credit_limit"])) > 0.7
    assert auc("account_takeover", lambda r: float(r["failed_logins_24h"])) > 0.6
    assert auc("is_fraud", lambda r: float(r["amount"])) > 0.6


def test_malformed_rows_are_of_every_kind(tmp_path):
    rows = _rows(synthesize("fraud_signals", 1000, tmp_path, seed=3, malformed=0.05))
    amount, stamp = HEADER.index("amount"), HEADER.index("timestamp")
    truncated = [r for r in rows if len(r) != len(HEADER)]
    whole = [r for r in rows if len(r) == len(HEADER)]
    assert truncated
    assert any(r[amount] == "" for r in whole)
    assert any("2" in (r[-1], r[-2], r[-3]) for r in whole)
    assert any(not r[stamp].endswith("Z") for r in whole)
    assert any(any(v in r for v in ("12,5x", "1.2.3", "n/a?", "7e")) for r in whole)


def test_unknown_name_and_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="fraud_signals"):
        synthesize("fraud_signal", 10, tmp_path)
    with pytest.raises(ValueError, match="malformed"):
        synthesize("fraud_signals", 10, tmp_path, malformed=1.5)
    with pytest.raises(ValueError, match="files"):
        synthesize("fraud_signals", 10, tmp_path, files=0)
    assert "fraud_signals" in SYNTHESIZERS
