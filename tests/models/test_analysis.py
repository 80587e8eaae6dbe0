"""flops_per_example and parameter_breakdown."""

import keras

from mtl_tf.models import flops_per_example, parameter_breakdown, task_submodel
from tests.models.toy import toy_model


def test_flops_count_the_multiply_adds_of_dense_layers():
    model = toy_model("hps")  # 6 -> 8 -> 8 -> per task 4 -> 1
    assert flops_per_example(model) == 6 * 8 + 8 * 8 + 2 * (8 * 4 + 4 * 1)
    assert flops_per_example(task_submodel(model, "a")) == 6 * 8 + 8 * 8 + 8 * 4 + 4


def test_flops_count_convolutions_and_embeddings():
    inputs = keras.Input((8, 8, 2))
    out = keras.layers.Conv2D(3, 3, padding="same")(inputs)
    out = keras.layers.DepthwiseConv2D(3, padding="same")(out)
    conv = keras.Model(inputs, out)
    assert flops_per_example(conv) == 8 * 8 * 3 * (3 * 3 * 2) + 8 * 8 * 3 * 9
    ids = keras.Input((5,), dtype="int32")
    embedded = keras.Model(ids, keras.layers.Embedding(10, 4)(ids))
    assert flops_per_example(embedded) == 5 * 4


def test_serving_one_mmoe_task_costs_less_than_all():
    model = toy_model({"name": "mmoe", "experts": 3})
    full, one = flops_per_example(model), flops_per_example(task_submodel(model, "a"))
    # every expert is shared; task b's gate, tower and head are left out
    assert full - one == 6 * 3 + 8 * 4 + 4  # gate, tower, head (the mixture is element-wise)
    assert parameter_breakdown(model)["fixed_primitives"] == 0
