"""Models: dataset.json + recipe -> a Keras functional model ``{task_name: output}``."""

from mtl_tf.models.builder import (build_model, parameter_counts, shared_variables, task_submodel,
                                   task_variables)

__all__ = ["build_model", "parameter_counts", "shared_variables", "task_submodel", "task_variables"]
