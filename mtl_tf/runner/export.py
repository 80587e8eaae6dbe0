"""Stage 4: the SavedModel export and the skew check of the reloaded export."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from mtl_tf.recipe import Recipe


def export_and_check(recipe: Recipe, spec: Any, tasks: Sequence[Any], model: Any, run_dir: Path,
                     run_id: str | None) -> tuple[Path, Any]:
    """Exports the model and compares the reloaded export with it on real test examples.

    A mismatch raises (SkewError) before anything is registered. A model trained in mixed
    precision is exported as a float32 copy with the same weights (they are float32 already):
    half-precision arithmetic is not reproducible between the eager model and the SavedModel's
    graph, so the skew check could not hold, and CPUs serve float32 faster.
    """
    from mtl_tf.data.reader import raw_examples
    from mtl_tf.export.exporter import export_model
    from mtl_tf.export.skew import check_skew

    if recipe.training.mixed_precision:
        model = float32_copy(recipe, spec, tasks, model)
    base = Path(recipe.export.dir) if recipe.export.dir else run_dir / "export"
    export_dir = base / str(int(time.time()))
    result = export_model(model, spec, tasks, export_dir)
    examples = raw_examples(spec, "test", recipe.export.skew_examples)
    skew = check_skew(model, result.saved_model_dir, examples, spec, recipe.export.skew_tolerance, tasks=tasks)
    return export_dir, skew


def float32_copy(recipe: Recipe, spec: Any, tasks: Sequence[Any], model: Any) -> Any:
    """The recipe's model built in float32 with ``model``'s weights."""
    from mtl_tf.models import build_model
    from mtl_tf.training.precision import dtype_policy

    with dtype_policy("float32"):
        copy = build_model(recipe, spec, tasks)
    copy.set_weights(model.get_weights())
    return copy
