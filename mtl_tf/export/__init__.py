"""Export for TensorFlow Serving: a SavedModel with serving signatures, the .keras file,
and the skew check that compares the reloaded export with the in-memory model."""

from mtl_tf.export.exporter import (SERVE_FEATURES, SERVING_DEFAULT, TASK_SIGNATURE_PREFIX,
                                    ExportResult, export_model, task_signature)
from mtl_tf.export.skew import SkewError, SkewReport, check_skew

__all__ = ["SERVE_FEATURES", "SERVING_DEFAULT", "TASK_SIGNATURE_PREFIX", "ExportResult",
           "export_model", "task_signature", "SkewError", "SkewReport", "check_skew"]
