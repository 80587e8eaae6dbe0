"""From the registry to TensorFlow Serving: the servable layout, its model config, a predict client.

- :mod:`.reference`  ``NAME@ALIAS``, ``NAME/VERSION`` and ``models:/...`` model references.
- :mod:`.registered` the registered version behind a reference: its export, dataset.json
  and recipe, downloaded through MLflow's artifacts API.
- :mod:`.labels`     MLflow aliases -> TF Serving version labels (champion -> stable, ...).
- :mod:`.model_config` the ``model_config_list`` text protobuf TF Serving reads.
- :mod:`.deploy`     ``mtl models deploy``: version folders, labels moved in two steps, pruning.
- :mod:`.rows`       raw CSV / JSON rows -> tf.Example, with the Beam pipeline's own parser.
- :mod:`.image_rows` a manifest or a folder of images -> tf.Example, with the image pipeline's
  own reader, checks and resize.
- :mod:`.predict`    answers for rows: local SavedModel, REST or gRPC, one JSON object per row.
- :mod:`.answers`    an image row's answer: dense maps as PNG files or summaries, boxes in the
  input image's pixels.
- :mod:`.client`     TF Serving REST and gRPC requests and responses.

Importing this package loads neither TensorFlow nor MLflow.
"""

from mtl_tf.serving.labels import DEFAULT_LABELS, parse_label_mapping
from mtl_tf.serving.reference import ModelRef, parse_model_ref

__all__ = ["DEFAULT_LABELS", "ModelRef", "parse_label_mapping", "parse_model_ref"]
