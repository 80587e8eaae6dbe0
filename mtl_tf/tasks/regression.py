"""Regression: one real value per row, mean squared error."""

import keras

from mtl_tf.tasks import TASK_TYPES
from mtl_tf.tasks.base import TaskType
from mtl_tf.tasks.heads import SqueezeLast


@TASK_TYPES.register("regression")
class RegressionTask(TaskType):
    """Label: float (NaN when missing); output shape (batch,)."""

    registered_type = "regression"
    default_metrics = ("rmse", "mae")
    losses = {"mse": ()}
    default_loss = "mse"

    def head(self, x):
        value = keras.layers.Dense(1, name=f"{self.name}_head")(x)
        return SqueezeLast(dtype="float32", name=self.name)(value)

    def per_example_loss(self, label, output):
        return keras.ops.square(output - label)

    def metric_factories(self):
        return {
            "rmse": lambda: keras.metrics.RootMeanSquaredError(name="rmse"),
            "mae": lambda: keras.metrics.MeanAbsoluteError(name="mae"),
            "mse": lambda: keras.metrics.MeanSquaredError(name="mse"),
        }

    def metric_inputs(self, label, output):
        return label[:, None], output[:, None]
