"""Task relationships: gradient conflict, inter-task affinity and task grouping.

- :mod:`~mtl_tf.analysis.matrices`: the closed forms (cosine matrix, lookahead affinity);
- :class:`~mtl_tf.analysis.probe.TaskProbe`: per-task gradients and lookahead losses of a
  model on a batch, computed functionally (the model's weights are never written);
- :class:`~mtl_tf.analysis.monitor.RelationsMonitor`: both matrices at epoch ends during
  training, as metrics, JSON files and plots;
- :func:`~mtl_tf.analysis.grouping.recommend_groups`: a partition of the tasks into k
  groups from an affinity matrix.

The NumPy parts import without TensorFlow; the probe and monitor load it.
"""

from mtl_tf.analysis.grouping import Grouping, group_score, recommend_groups
from mtl_tf.analysis.matrices import affinity_from_losses, cosine_from_gram, cosine_matrix

__all__ = ["Grouping", "affinity_from_losses", "cosine_from_gram", "cosine_matrix", "group_score",
           "recommend_groups"]
