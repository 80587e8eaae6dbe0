"""An image run logs a grid of test predictions under report/: what the export serves, drawn."""

import numpy as np
import pytest
import tensorflow as tf
import yaml
from PIL import Image

from mtl_tf.data.synth import synthesize_images
from mtl_tf.data.synth.driving_perception import CLASSES, OBJECT_CLASSES

HEIGHT, WIDTH, SCALE, GAP, TITLE = 32, 48, 2, 2, 12
RECIPE = """
name: tiny_driving
output_dir: {out}/run
data:
  source: {{kind: manifest, path: {out}/raw/manifest.jsonl}}
  features: [{{name: image, kind: image, height: 32, width: 48}}]
  split: {{train: 0.5, validation: 0.25, test: 0.25, seed: 3}}
  output_dir: {out}/dataset
  shards: 1
tasks:
  - {{name: semantic, type: segmentation, label: mask, classes: {classes}}}
  - {{name: depth, type: depth, label: depth, depth_scale: 256}}
  - {{name: objects, type: detection, label: boxes, classes: {objects}, max_boxes: 24, head: {{channels: 4}}}}
  - {{name: weather, type: multiclass, label: weather, classes: [clear, fog, rain]}}
model:
  trunk: {{name: conv, filters: [4, 8], stem: 4}}
  decoder: {{name: fpn, filters: 4}}
  tower: {{name: mlp, units: [4]}}
training: {{epochs: 1, batch_size: 8}}
analysis: {{conflict_batches: 0, affinity_batches: 0}}
export: {{skew_examples: 4}}
"""


@pytest.mark.slow  # Beam preprocessing, training, export and MLflow of a tiny image run (about a minute)
@pytest.mark.integration
def test_an_image_run_logs_a_grid_whose_prediction_tiles_are_what_the_export_serves(tmp_path):
    from mlflow import MlflowClient

    from mtl_tf.data.reader import make_dataset
    from mtl_tf.data.spec import DatasetSpec
    from mtl_tf.recipe.loader import parse_recipe
    from mtl_tf.runner import run_recipe
    from mtl_tf.tasks import build_tasks

    synthesize_images("driving_perception", 48, tmp_path / "raw", seed=4, height=HEIGHT, width=WIDTH)
    raw = yaml.safe_load(RECIPE.format(out=tmp_path, classes=list(CLASSES), objects=list(OBJECT_CLASSES)))
    recipe = parse_recipe(raw)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = run_recipe(recipe, tracking_uri=uri, register=False, verbose=0, echo=lambda *a: None)

    client = MlflowClient(uri)
    logged = {a.path for a in client.list_artifacts(result.run_id, "report")}
    assert "report/predictions.png" in logged
    local = client.download_artifacts(result.run_id, "report/predictions.png", str(tmp_path / "download"))
    grid = np.asarray(Image.open(local).convert("RGB"))
    spec = DatasetSpec.read(tmp_path / "dataset")
    shown = min(6, spec.splits["test"].num_examples)
    # input, truth + prediction for semantic, depth, objects, one labels column
    assert grid.shape == (TITLE + shown * (HEIGHT * SCALE + GAP) + GAP, 8 * (WIDTH * SCALE + GAP) + GAP, 3)
    assert (result.run_dir / "predictions.png").is_file()

    # The prediction tiles hold what the reloaded export serves for those test images.
    tasks = build_tasks(recipe.tasks, spec)
    features, labels, _ = next(iter(make_dataset(spec, "test", tasks, batch_size=shown)))
    served = tf.saved_model.load(str(result.export_dir)).signatures["serve_features"](image=features["image"])
    predicted = served["semantic"].numpy()
    wrong_somewhere = 0
    for row in range(shown):
        top = TITLE + GAP + row * (HEIGHT * SCALE + GAP)
        truth_tile, pred_tile = (grid[top:top + HEIGHT * SCALE, GAP + c * (WIDTH * SCALE + GAP):][:, :WIDTH * SCALE]
                                 for c in (1, 2))
        differs = (truth_tile != pred_tile).any(axis=-1)[::SCALE, ::SCALE]
        label = labels["semantic"][row].numpy()
        np.testing.assert_array_equal(differs, (predicted[row] != label) | (label == 255))
        wrong_somewhere += int(differs.any())
    assert wrong_somewhere > 0  # one epoch on 24 images: the model is wrong somewhere
