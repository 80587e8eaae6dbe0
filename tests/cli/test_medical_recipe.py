"""The shipped medical_imaging recipe end to end on 16-bit synthetic scans: patient-wise splits,
per-finding and per-patient scores, reliability diagrams in MLflow, a registered model whose
export answers a tf.Example carrying the scan as a raw 16-bit PNG."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from mtl_tf.cli.main import cli

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "medical_imaging.yaml"


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.slow  # trains and exports a small image model with three tasks (about a minute on 2 cores)
@pytest.mark.integration
def test_medical_imaging_recipe_runs_on_16_bit_scans_and_serves_them(tmp_path, monkeypatch):
    import tensorflow as tf
    from mlflow import MlflowClient

    from mtl_tf.data.spec import DatasetSpec

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert _invoke("data", "synth", "medical_imaging", "--rows", 90, "--out", "data/medical_imaging/raw",
                   "--bit-depth", 16, "--seed", 4).exit_code == 0
    raw = yaml.safe_load(RECIPE.read_text())
    raw["data"]["features"][0].update({"bit_depth": 16, "window": "per_image"})
    raw["data"]["split"].update({"train": 0.6, "validation": 0.2, "test": 0.2})
    raw["data"]["shards"] = 1
    # (8-channel stages crash TensorFlow 2.21's oneDNN kernels on some of these CPUs; 16 is fine)
    raw["model"]["trunk"]["filters"] = [16, 32]
    raw["model"]["decoder"]["filters"] = 16
    raw["training"].update({"epochs": 1, "batch_size": 16})
    raw["export"]["skew_examples"] = 8
    recipe = tmp_path / "medical_imaging.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    uri = f"sqlite:///{tmp_path}/mlflow.db"

    result = _invoke("run", recipe, "--tracking-uri", uri, "-q")
    assert result.exit_code == 0, result.output
    assert "registered: medical_imaging version 1" in result.output

    # no patient in two splits, and every example knows its patient
    spec = DatasetSpec.read("artifacts/medical_imaging/dataset")
    assert spec.feature("scan").image.bit_depth == 16 and spec.example_key == "__key__"
    splits_of: dict[str, set[str]] = {}
    for split in spec.splits:
        for record in tf.data.TFRecordDataset(tf.io.gfile.glob(spec.files(split)), compression_type="GZIP"):
            example = tf.train.Example.FromString(record.numpy())
            splits_of.setdefault(example.features.feature["__key__"].bytes_list.value[0].decode(), set()).add(split)
    assert len(splits_of) > 10 and all(len(s) == 1 for s in splits_of.values())

    report = json.loads(Path("artifacts/medical_imaging/report.json").read_text())
    findings = report["findings"]["tasks"]["findings"]
    assert set(findings["classes"]) == {"nodule", "effusion", "cardiomegaly"}
    for row in findings["classes"].values():
        assert row["ece"] is not None and (row["auc"] is not None or "undefined" in row)
    patients = report["findings"]["by_key"]["tasks"]["findings"]
    assert patients["keys"] == len([k for k, s in splits_of.items() if s == {"test"}])
    organs = report["findings"]["segmentation"]["organs"]
    assert set(organs["classes"]) == {"background", "left_lung", "right_lung", "heart"}
    assert organs["mean_dice"] == pytest.approx(report["tasks"]["organs"]["test"]["dice"], abs=1e-4)

    client = MlflowClient(uri)
    run_id = report["mlflow"]["run_id"]
    pictures = sorted(a.path for a in client.list_artifacts(run_id, "calibration"))
    assert "calibration/findings__nodule.png" in pictures and "calibration/findings__by_key__effusion.png" in pictures
    local = client.download_artifacts(run_id, "calibration/findings__effusion.png", str(tmp_path))
    assert Image.open(local).format == "PNG"
    metrics = client.get_run(run_id).data.metrics
    assert "findings/test_mean_ece" in metrics and "organs/test_heart_dice" in metrics

    # the export answers a tf.Example carrying the scan as it came off the scanner (16-bit PNG)
    rows = [json.loads(line) for line in Path("data/medical_imaging/raw/manifest.jsonl").read_text().splitlines()]
    raw_png = Path("data/medical_imaging/raw", rows[0]["image"]).read_bytes()
    assert Image.open(io.BytesIO(raw_png)).mode.startswith("I")
    example = tf.train.Example(features=tf.train.Features(feature={
        "scan": tf.train.Feature(bytes_list=tf.train.BytesList(value=[raw_png]))})).SerializeToString()
    export = sorted(Path("artifacts/medical_imaging/export").iterdir())[-1]
    served = tf.saved_model.load(str(export)).signatures["serving_default"](examples=tf.constant([example]))
    assert served["findings"].shape == (1, 3) and served["organs"].shape == (1, 64, 64)
    assert set(np.unique(served["organs"].numpy())) <= {0, 1, 2, 3}
    # ... and answers it as it answers the stored (windowed) example of the same scan
    from pipelines.images.validation import window_to_8_bit

    stored = window_to_8_bit(np.asarray(Image.open(io.BytesIO(raw_png))), "per_image")
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, format="PNG")
    windowed = tf.train.Example(features=tf.train.Features(feature={
        "scan": tf.train.Feature(bytes_list=tf.train.BytesList(value=[buffer.getvalue()]))})).SerializeToString()
    again = tf.saved_model.load(str(export)).signatures["serving_default"](examples=tf.constant([windowed]))
    np.testing.assert_allclose(served["findings"].numpy(), again["findings"].numpy(), atol=1e-6)
