"""The jobs a recipe runs, stage by stage.

``mtl run`` is :func:`run_recipe`: preprocess (Beam, :mod:`.preprocess`) -> train (Trainer,
:mod:`.train`) -> evaluate and delta_m (:mod:`.evaluate`) -> export and skew check
(:mod:`.export`) -> report (:mod:`.report`) -> register (MLflow), tracked in one MLflow run
(:mod:`.tracking`). ``mtl baseline`` is :func:`run_baselines` (:mod:`.baselines`).

Around training, the chief measures task relationships at epoch ends (gradient conflict and
inter-task affinity, :mod:`mtl_tf.analysis`), and after evaluation it reports delta_m against
the recipe's single-task baselines when ``mtl baseline`` has made them.

A recipe with ``datasets`` (tasks whose labels live in different datasets) preprocesses every
dataset, builds the model from their combined spec (:mod:`mtl_tf.data.collection`), trains on
batches mixed per dataset by the recipe's sampler (:mod:`mtl_tf.data.mixing`), evaluates on
every dataset's test rows and checks the export on the main dataset's test examples.
"""

from mtl_tf.runner.baselines import BaselineResult, run_baselines, single_task_recipe
from mtl_tf.runner.export import export_and_check
from mtl_tf.runner.preprocess import dataset_artifacts, preprocess, preprocess_collection
from mtl_tf.runner.recipe_run import RunResult, run_recipe
from mtl_tf.runner.train import datasets, epoch_logger, epochs_done, make_monitor, make_trainer, mixed_training_recipe

__all__ = ["BaselineResult", "RunResult", "dataset_artifacts", "datasets", "epoch_logger", "epochs_done",
           "export_and_check", "make_monitor", "make_trainer", "mixed_training_recipe", "preprocess",
           "preprocess_collection", "run_baselines", "run_recipe", "single_task_recipe"]
