"""Models: dataset.json + recipe -> a Keras functional model ``{task_name: output}``."""

from mtl_tf.models.analysis import flops_per_example, parameter_breakdown, penalty_values
from mtl_tf.models.builder import (build_model, check_ownership, parameter_counts, shared_variables,
                                   task_submodel, task_variables)
from mtl_tf.models.experts import expert_columns, expert_utilisation, utilisation_heatmap
from mtl_tf.models.pyramid import Pyramid

__all__ = ["build_model", "check_ownership", "expert_columns", "expert_utilisation", "flops_per_example",
           "parameter_breakdown", "parameter_counts", "Pyramid", "penalty_values", "shared_variables",
           "task_submodel", "task_variables", "utilisation_heatmap"]
