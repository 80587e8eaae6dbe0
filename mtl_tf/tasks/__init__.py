"""Task types: each brings its head, its masked loss, its metrics and their direction."""

from mtl_tf.registry import Registry

TASK_TYPES = Registry("task type")

from mtl_tf.tasks.base import TaskType, build_tasks  # noqa: E402
from mtl_tf.tasks.binary import BinaryTask  # noqa: E402
from mtl_tf.tasks.centernet import decode_detections  # noqa: E402
from mtl_tf.tasks.dense import DenseTask  # noqa: E402
from mtl_tf.tasks.depth import DepthTask  # noqa: E402
from mtl_tf.tasks.detection import DetectionTask  # noqa: E402
from mtl_tf.tasks.multiclass import MulticlassTask  # noqa: E402
from mtl_tf.tasks.multilabel import MultilabelTask  # noqa: E402
from mtl_tf.tasks.regression import RegressionTask  # noqa: E402
from mtl_tf.tasks.segmentation import SegmentationTask  # noqa: E402

__all__ = ["TASK_TYPES", "TaskType", "DenseTask", "build_tasks", "decode_detections", "BinaryTask",
           "MulticlassTask", "MultilabelTask", "RegressionTask", "SegmentationTask", "DepthTask",
           "DetectionTask"]
