"""MLflow tracking: runs, the model registry and promotion gates.

MLflow loads only when a function here talks to the tracking server, so importing this
package stays cheap.
"""

from mtl_tf.tracking.promotion import PromotionRefused, PromotionResult, promote
from mtl_tf.tracking.registry import describe_model, list_models, register_export
from mtl_tf.tracking.run import TrackedRun
from mtl_tf.tracking.uri import DEFAULT_DB, resolve_tracking_uri

__all__ = ["PromotionRefused", "PromotionResult", "promote", "describe_model", "list_models",
           "register_export", "TrackedRun", "DEFAULT_DB", "resolve_tracking_uri"]
