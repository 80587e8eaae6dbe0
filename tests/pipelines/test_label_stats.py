"""A regression label's statistics per split in dataset.json, from a real pipeline run,
against NumPy on the labels the shards hold and the rows written."""

import glob
import re

import numpy as np
import pytest

from mtl_tf.data.spec import DatasetSpec
from pipelines.csv_to_tfrecords import run
from tests.pipelines.tiny import HEADER, tiny_recipe, write_csv

ROWS = 90


def _labels_by_split(spec):
    """Split -> the ``spend`` labels its shards hold (rows without one left out)."""
    import tensorflow as tf

    found = {}
    for split in spec.splits:
        values = []
        for record in tf.data.TFRecordDataset(sorted(glob.glob(spec.files(split))), compression_type="GZIP"):
            feature = tf.train.Example.FromString(record.numpy()).features.feature
            if "spend" in feature:
                values += list(feature["spend"].float_list.value)
        found[split] = np.array(values, np.float64)
    return found


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("label_stats")
    rng = np.random.default_rng(4)
    spend = rng.normal(1.0e4, 1.0e3, ROWS).round(2)
    rows = []
    for i in range(ROWS):
        label = "" if i % 7 == 3 else f"{spend[i]}"  # some rows have no spend label
        rows.append([f"u{i}", f"{rng.uniform(0, 100):.2f}", "0.5", "red", "1709287200", i % 2, "abc"[i % 3],
                     "x|y", label])
    write_csv(root / "raw" / "a.csv", HEADER, rows)
    result = run(tiny_recipe(str(root / "raw" / "*.csv"), str(root / "out")), ["--runner=DirectRunner"])
    written = np.array([float(r[-1]) for r in rows if r[-1]], np.float64)
    return result, written


@pytest.mark.integration
def test_dataset_json_holds_each_splits_count_mean_std_min_max(dataset):
    result, written = dataset
    spec = DatasetSpec.read(result.path)  # as training reads it
    stats = spec.task("spend").stats
    by_split = _labels_by_split(spec)
    assert set(stats.root) == set(spec.splits) == {"train", "validation", "test"}
    # Every labelled row written is in exactly one split (as float32, which the shards hold).
    np.testing.assert_array_equal(np.sort(np.concatenate(list(by_split.values()))),
                                  np.sort(written.astype(np.float32).astype(np.float64)))
    for split, values in by_split.items():
        moments = stats.split(split)
        assert moments.count == len(values) == spec.task("spend").labelled[split] > 0
        # The pipeline reads the CSV's decimal strings; the shards hold them as float32.
        assert moments.mean == pytest.approx(values.mean(), rel=1e-6)
        assert moments.std == pytest.approx(values.std(), rel=1e-6)
        assert moments.min == pytest.approx(values.min(), rel=1e-6)
        assert moments.max == pytest.approx(values.max(), rel=1e-6)
    assert stats.train == stats.split("train")
    assert spec.task("spend").positives == {}


@pytest.mark.integration
def test_other_task_types_have_no_label_moments(dataset):
    result, _ = dataset
    assert [t.stats for t in result.spec.tasks if t.type != "regression"] == [None, None, None]


@pytest.mark.integration
def test_mtl_data_describe_shows_a_regression_labels_train_mean_and_sd(dataset):
    from click.testing import CliRunner

    from mtl_tf.cli.main import cli

    result, _ = dataset
    values = _labels_by_split(result.spec)["train"]
    out = CliRunner().invoke(cli, ["data", "describe", str(result.path)])
    assert out.exit_code == 0, out.output
    line = next(line for line in out.output.splitlines() if line.startswith("  task spend"))
    match = re.fullmatch(r"  task spend \(regression\): labelled \{.*\}, train mean (\S+) sd (\S+) "
                         r"\(min (\S+), max ([^)]+)\)", line)
    assert match, line
    shown = [float(v) for v in match.groups()]
    assert shown == pytest.approx([values.mean(), values.std(), values.min(), values.max()], rel=1e-5)
    assert "  task fraud (binary): labelled" in out.output and "positives {'train'" in out.output
