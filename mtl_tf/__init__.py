"""mtl_tf: multi-task learning for industry pipelines on TensorFlow 2 and Keras 3.

Importing this package is cheap on purpose: it does not import Apache Beam or MLflow
(they load where they are used), and TensorFlow loads with the sub-packages that need it.
"""

__version__ = "0.1.0"
