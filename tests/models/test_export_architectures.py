"""Every architecture, built from a recipe on the tiny dataset, exports to a SavedModel with
serving_default, serve_features and one signature per task that match the Keras model."""

import numpy as np
import pytest
import tensorflow as tf

from mtl_tf.data.parsing import feature_parse_spec
from mtl_tf.data.reader import raw_examples
from mtl_tf.export import SERVE_FEATURES, SERVING_DEFAULT, export_model
from mtl_tf.models import build_model
from mtl_tf.recipe import parse_recipe
from mtl_tf.tasks import build_tasks
from tests.helpers.tiny_dataset import make_tiny_dataset, tiny_recipe
from tests.models.toy import ARCHITECTURE_NAMES

# Two architectures export in the default run; the others (same export path, each
# several seconds) in the slow run.
DEFAULT_RUN = {"hps", "mmoe"}
OPTIONS = {"mmoe": {"experts": 3}, "ple": {"task_experts": 1, "shared_experts": 1}}


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("arch_export"), rows=24)


@pytest.mark.parametrize("name", [n if n in DEFAULT_RUN else pytest.param(n, marks=pytest.mark.slow)
                                  for n in ARCHITECTURE_NAMES])
def test_architecture_exports_with_per_task_signatures(name, spec, tmp_path):
    recipe = parse_recipe(tiny_recipe(spec, architecture={"name": name, **OPTIONS.get(name, {})},
                                      trunk={"name": "mlp", "units": [8, 8]}), check=False)
    tasks = build_tasks(recipe.tasks)
    model = build_model(recipe, spec, tasks)
    result = export_model(model, spec, tasks, tmp_path / "1")
    loaded = tf.saved_model.load(str(result.saved_model_dir))
    assert set(loaded.signatures) == {SERVING_DEFAULT, SERVE_FEATURES, "predict_fraud", "predict_default_risk"}

    examples = tf.constant(raw_examples(spec, "test", 4))
    served = loaded.signatures[SERVING_DEFAULT](examples=examples)
    parsed = tf.io.parse_example(examples, feature_parse_spec(spec))
    expected = {k: v.numpy() for k, v in model(parsed, training=False).items()}
    for task in ("fraud", "default_risk"):
        np.testing.assert_allclose(served[task].numpy(), expected[task], rtol=1e-5, atol=1e-6)
        alone = loaded.signatures[f"predict_{task}"](examples=examples)
        assert list(alone) == [task]
        np.testing.assert_allclose(alone[task].numpy(), expected[task], rtol=1e-5, atol=1e-6)

