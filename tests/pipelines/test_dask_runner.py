"""The CSV and image pipelines run unchanged on the Dask runner, over a local multi-process
``distributed.LocalCluster``, and write what the DirectRunner writes: the same examples per
split (as sets: the order within and across shards is not fixed), the same dataset.json
statistics and counts, the same rejects, and no temporary files left behind."""

import glob
import json
import math

import numpy as np
import pytest

from mtl_tf.data.synth import synthesize
from pipelines.engine import DASK_RUNNER
from tests.pipelines.images_tiny import random_depth, random_image, random_mask, save_png, scene_recipe, write_jsonl
from tests.pipelines.tiny import fraud_recipe

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SPLITS = ("train", "validation", "test")


@pytest.fixture(scope="module")
def dask_args():
    """Beam options for the Dask runner on a local cluster of two worker processes."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield [f"--runner={DASK_RUNNER}", f"--dask_client_address={cluster.scheduler_address}",
               "--dask_npartitions=2"]


def _records(folder, split):
    import tensorflow as tf

    files = sorted(glob.glob(f"{folder}/{split}-*.tfrecord.gz"))
    return sorted(r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP"))


def _rejects(folder):
    return sorted(line for path in glob.glob(f"{folder}/rejects/*.jsonl") for line in open(path).read().splitlines())


def _close(a, b, path="dataset.json"):
    """Equal JSON values, floats to 1e-9 relative (statistics are merged in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), path
        for key in a:
            _close(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (path, a, b)
    else:
        assert a == b, (path, a, b)


def _dataset_json(folder):
    spec = json.loads((folder / "dataset.json").read_text())
    spec.pop("created")
    return spec


def _same_outputs(direct, dask):
    for split in SPLITS:
        expected = _records(direct, split)
        assert _records(dask, split) == expected, split
        assert expected or split != "train"
    assert _rejects(dask) == _rejects(direct) and _rejects(direct)
    _close(_dataset_json(dask), _dataset_json(direct))
    assert not [p for p in dask.rglob("*") if "beam-temp" in p.name]
    assert sorted(p.name for p in dask.iterdir()) == sorted(p.name for p in direct.iterdir())


def test_the_csv_pipeline_on_dask_writes_what_the_direct_runner_writes(tmp_path, dask_args):
    from pipelines.csv_to_tfrecords import run

    synthesize("fraud_signals", 240, tmp_path / "raw", seed=3, files=2, malformed=0.05)
    recipe = fraud_recipe(str(tmp_path / "raw" / "*.csv"), str(tmp_path / "unused"))
    direct = run(recipe, ["--runner=DirectRunner"], out_dir=str(tmp_path / "direct"))
    dask = run(recipe, dask_args, out_dir=str(tmp_path / "dask"))
    assert dask.rows_written == direct.rows_written and dask.rows_rejected == direct.rows_rejected > 0
    assert dask.rows_in == 240
    _same_outputs(tmp_path / "direct", tmp_path / "dask")


def _scenes(raw, good=6):
    rng = np.random.default_rng(5)
    rows = []
    for i in range(good):
        save_png(raw / f"images/{i}.png", random_image(rng))
        save_png(raw / f"masks/{i}.png", random_mask(rng), "L")
        save_png(raw / f"depth/{i}.png", random_depth(rng))
        rows.append({"image": f"images/{i}.png", "mask": f"masks/{i}.png", "depth": f"depth/{i}.png",
                     "boxes": [[1, 2, 11, 13, "car"]], "weather": ["clear", "fog"][i % 2], "seq": f"s{i}"})
    (raw / "junk.png").write_bytes(bytes(range(256)) * 3)
    bad = [{**rows[0], "seq": "bad-1", "image": "junk.png"}, {**rows[1], "seq": "bad-2", "weather": "snow"}]
    return write_jsonl(raw / "manifest.jsonl", rows[:3] + bad + ["not json"] + rows[3:])


def test_the_image_pipeline_on_dask_writes_what_the_direct_runner_writes(tmp_path, dask_args):
    from pipelines.images.pipeline import run

    manifest = _scenes(tmp_path / "raw")
    recipe = scene_recipe({"kind": "manifest", "path": manifest}, str(tmp_path / "unused"),
                          split={"key": "seq", "train": 0.5, "validation": 0.25, "test": 0.25, "seed": 3})
    direct = run(recipe, ["--runner=DirectRunner"], out_dir=str(tmp_path / "direct"))
    dask = run(recipe, dask_args, out_dir=str(tmp_path / "dask"))
    assert dask.rows_written == direct.rows_written and dask.rows_rejected == direct.rows_rejected == 3
    _same_outputs(tmp_path / "direct", tmp_path / "dask")
