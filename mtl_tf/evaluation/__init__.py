"""Evaluation: per-task test metrics, reports and plots."""

from mtl_tf.evaluation.report import build_report, plot_history, write_report

__all__ = ["build_report", "plot_history", "write_report"]
