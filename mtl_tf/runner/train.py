"""Stage 2: the Trainer of a recipe, its datasets, and what runs at every epoch end
(the task-relationship monitor and the MLflow epoch log)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from mtl_tf.recipe import Recipe


def mixed_training_recipe(recipe: Recipe, steps_per_epoch: int) -> Recipe:
    """The recipe the Trainer sees when several datasets are mixed: the sampler already chose
    the datasets (:mod:`mtl_tf.data.mixing`) and each batch's masks say which tasks learn
    from it, so the Trainer samples jointly; an epoch is ``steps_per_epoch`` steps of the
    endless mix."""
    from mtl_tf.recipe.schema import Component

    training = recipe.training.model_copy(update={"sampling": Component(name="joint"),
                                                  "steps_per_epoch": steps_per_epoch})
    return recipe.model_copy(update={"training": training})


def epochs_done(checkpoint_dir: Path) -> int:
    """Epochs a run has committed: its newest epoch checkpoint's epoch (0 when there is none).

    The history file may already hold the epoch after it (a crash before that epoch's
    checkpoint), which a resumed run trains again.
    """
    from mtl_tf.training.checkpointing import epochs_checkpointed

    return epochs_checkpointed(checkpoint_dir)


def model_configuration(recipe: Recipe, spec: Any) -> dict[str, Any]:
    """What builds a recipe's model variables: architecture, trunk, tower, tasks and features
    (with the vocabulary sizes the data gave them). Kept next to the checkpoints, so a resume
    with another configuration is refused naming what changed."""
    model = recipe.model
    tasks = [{"name": t.name, "type": t.type, **({"classes": t.classes} if t.classes else {})} for t in recipe.tasks]
    features = []
    for feature in spec.features:
        entry = {"name": feature.name, "kind": feature.kind}
        vocabulary = getattr(feature, "vocabulary", None)
        if vocabulary:
            entry["vocabulary"] = len(vocabulary)
        features.append(entry)
    return {"architecture": model.architecture.as_dict(), "trunk": model.trunk.as_dict(),
            "tower": model.tower.as_dict(), "tasks": tasks, "features": features}


def make_trainer(recipe: Recipe, spec: Any, tasks: Sequence[Any], run_dir: Path, strategy: Any, verbose: int = 1):
    """The Trainer for a recipe: model factory, methods and checkpoints under ``strategy``."""
    from mtl_tf.models import build_model
    from mtl_tf.training import Trainer

    training = recipe.training
    stopping = training.early_stopping.model_dump() if training.early_stopping else None
    return Trainer(
        model_fn=lambda: build_model(recipe, spec, tasks),
        tasks=tasks,
        optimizer=training.optimizer.as_dict(),
        weighting=training.weighting.as_dict(),
        gradient=training.gradient.as_dict(),
        sampling=training.sampling.as_dict(),
        task_optimizer=training.task_optimizer.as_dict() if training.task_optimizer else None,
        task_sizes={task.name: task.labelled.get("train", 0) for task in spec.tasks},
        strategy=strategy,
        epochs=training.epochs,
        steps_per_epoch=training.steps_per_epoch,
        steps_per_execution=training.steps_per_execution,
        checkpoint_every_steps=training.checkpoint_every_steps,
        mixed_precision=training.mixed_precision,
        jit_compile=training.jit_compile,
        early_stopping=stopping,
        checkpoint_dir=str(run_dir / "checkpoints"),
        configuration=model_configuration(recipe, spec),
        seed=training.seed,
        verbose=verbose,
    )


def datasets(recipe: Recipe, spec: Any, tasks: Sequence[Any]) -> dict[str, Any]:
    """train (shuffled, augmented as ``data.augment`` says), validation and test tf.data pipelines."""
    from mtl_tf.data.reader import make_dataset

    training = recipe.training
    common = {"spec": spec, "tasks": tasks, "batch_size": training.batch_size, "cache": recipe.data.cache,
              "cache_dir": recipe.data.cache_dir}
    return {
        "train": make_dataset(split="train", shuffle=True, shuffle_buffer=training.shuffle_buffer,
                              seed=training.seed, augment=recipe.data.augment, **common),
        "validation": make_dataset(split="validation", **common),
        "test": make_dataset(split="test", **common),
    }


def make_monitor(recipe: Recipe, spec: Any, tasks: Sequence[Any], trainer: Any, run_dir: Path,
                 resume: bool = False, collection: Any = None) -> Any:
    """The epoch-end task-relationship monitor of a run, or None (one task, or turned off).

    It runs on the chief alone, on the chief's local copy of the weights and on a few
    training batches read once (shuffled with a fixed seed); it writes no variable and runs
    no collective op, so the other workers are not involved (see :mod:`mtl_tf.analysis.probe`).
    With a ``collection`` (a recipe with ``datasets``) the batches are joint batches of every
    dataset, so every task is present in each.
    """
    analysis = recipe.analysis
    count = max(analysis.conflict_batches, analysis.affinity_batches)
    if len(tasks) < 2 or count == 0:
        return None
    from mtl_tf.analysis.monitor import RelationsMonitor, probe_batches
    from mtl_tf.data.reader import make_dataset

    training = recipe.training
    buffer = min(training.shuffle_buffer, 4 * count * training.batch_size)
    if collection is None:
        source = make_dataset(spec, "train", tasks, training.batch_size, shuffle=True, shuffle_buffer=buffer,
                              seed=training.seed + 1)
    else:
        from mtl_tf.data.mixing import probe_source

        source = probe_source(recipe, collection, tasks, count)
    rate = analysis.affinity_lr or (lambda: current_learning_rate(trainer.optimizer))
    return RelationsMonitor(trainer.model, tasks, probe_batches(source, count), run_dir / "analysis",
                            conflict_batches=analysis.conflict_batches, affinity_batches=analysis.affinity_batches,
                            learning_rate=rate, every=analysis.every, resume=resume)


def current_learning_rate(optimizer: Any) -> float:
    """The optimizer's learning rate now (a schedule evaluated at the current step)."""
    import numpy as np

    return float(np.asarray(optimizer.learning_rate))


def epoch_logger(tracked: Any, monitor: Any = None) -> Callable[[int, dict], None]:
    """The Trainer's epoch-end callback: relations measured (when due) and the epoch logged."""

    def on_epoch_end(epoch: int, logs: dict) -> None:
        if monitor is not None:
            logs.update(monitor.on_epoch_end(epoch))
            for path in monitor.files():
                tracked.log_artifact(path, "analysis")
        tracked.log_epoch(epoch, logs)

    return on_epoch_end
