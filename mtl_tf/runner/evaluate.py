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


def findings_stage(recipe: Recipe, spec: Any, tasks: Sequence[Any], model: Any, test: Any,
                   tracked: Any) -> Any:
    """Per-finding scores, calibration and per-key (per-patient) scores of the test split
    (:mod:`mtl_tf.evaluation.findings`), logged to MLflow; None when the recipe turns
    calibration off and scores nothing per key, or has no binary, multi-label or segmentation task.
    """
    from mtl_tf.data.reader import split_keys
    from mtl_tf.evaluation.findings import evaluate_findings
    from mtl_tf.evaluation.predictions import SIGMOID_TYPES, collect_predictions

    evaluation = recipe.evaluation
    scored = [t for t in tasks if t.registered_type in (*SIGMOID_TYPES, "segmentation")]
    if not scored or (not evaluation.calibration and evaluation.by_key is None):
        return None
    keys = split_keys(spec, "test") if evaluation.by_key is not None else None
    predictions = collect_predictions(model, test, scored, keys)
    findings = evaluate_findings(predictions, scored, bins=evaluation.calibration_bins, by_key=evaluation.by_key,
                                 key_name=spec.split_key)
    tracked.log_metrics(findings.metrics)
    if findings.undefined:
        tracked.set_tags({"mtl.undefined_findings": ",".join(findings.undefined)})
    return findings
