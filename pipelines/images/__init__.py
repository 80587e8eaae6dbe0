"""The image pipeline: manifests, image folders and npz files -> tf.Example TFRecords + ``dataset.json``.

- :mod:`pipelines.images.items`: :class:`Item` (one image and its raw labels) and the reject kinds.
- :mod:`pipelines.images.sources`: the source kinds (``manifest``, ``image_folder``, ``npz``):
  driver-side checks, work units and the item readers, one registered class per kind.
- :mod:`pipelines.images.validation`: decoding and checking one image, mask, depth map or box list.
- :mod:`pipelines.images.geometry`: bringing an image and its dense labels to the stored size
  (``stretch``, ``pad``, ``crop``), boxes included.
- :mod:`pipelines.images.labels`: image-level labels, other features and derived labels.
- :mod:`pipelines.images.convert`: one item -> its split, tf.Example values and statistics.
- :mod:`pipelines.images.statistics`: CombineFns for image, dense-label and label statistics.
- :mod:`pipelines.images.pipeline`: the Beam pipeline (``build_pipeline``, ``run``).

PIL and NumPy do the per-item work; TensorFlow is never imported in the workers.
"""
