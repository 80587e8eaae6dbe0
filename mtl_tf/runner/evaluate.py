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
    if not section:
        return "delta_m: not computed"
    if not section.get("available"):
        return f"delta_m: not computed ({section['reason']}; {section['how']})"
    overall = section.get("all_metrics_pct")
    overall_text = "n/a" if overall is None else f"{overall:+.2f}%"
    return f"delta_m vs single-task baselines: {section['primary_pct']:+.2f}% (primary metrics), " \
           f"{overall_text} (all metrics)"
