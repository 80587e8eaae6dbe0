"""Stage 3: delta_m against the recipe's single-task baselines, and its summary line."""

from __future__ import annotations

from typing import Any, Sequence

from mtl_tf.recipe import Recipe


def delta_m_section(recipe: Recipe, spec: Any, tasks: Sequence[Any], test_metrics: Any,
                    tracked: Any) -> dict[str, Any]:
    """The delta_m section (compared with baselines.json when it exists), logged to MLflow."""
    from mtl_tf.evaluation.baselines import compare

    section = compare(recipe, spec, tasks, test_metrics)
    if section["available"]:
        tracked.log_metrics(section.pop("metrics"))
        tracked.set_tags({"mtl.delta_m.baselines": section["baselines"]})
    return section


def delta_m_line(section: dict[str, Any] | None) -> str:
    """The run summary's delta_m line(s)."""
    from mtl_tf.evaluation.report import delta_m_summary

    return delta_m_summary(section)
