"""Evaluation: per-task test metrics, delta_m against single-task baselines, reports and plots."""

from mtl_tf.evaluation.baselines import Baselines, baselines_path
from mtl_tf.evaluation.delta_m import DeltaM, delta_m, relative_change
from mtl_tf.evaluation.report import build_report, plot_history, write_report

__all__ = ["Baselines", "DeltaM", "baselines_path", "build_report", "delta_m", "plot_history",
           "relative_change", "write_report"]
