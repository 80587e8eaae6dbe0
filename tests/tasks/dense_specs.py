"""dataset.json entries of dense tasks, built in memory for the task tests."""

from mtl_tf.data.spec import (DatasetSpec, DepthStats, DetectionStats, FeatureSpec, ImageInfo, ImageStats,
                              SegmentationStats, SplitSpec, TaskSpec)


def segmentation_spec(name="seg", classes=("a", "b", "c"), shape=(2, 4), ignore_index=255, pixels=None):
    stats = None if pixels is None else SegmentationStats(pixels=list(pixels))
    return TaskSpec(name=name, type="segmentation", label_key="mask", dtype="int32", classes=list(classes),
                    shape=list(shape), ignore_index=ignore_index, stats=stats)


def depth_spec(name="depth", shape=(2, 4)):
    return TaskSpec(name=name, type="depth", label_key="depth", dtype="float32", shape=list(shape),
                    stats=DepthStats(valid=10, min=0.5, max=9.0, mean=3.0))


def detection_spec(name="objects", classes=("car",), max_boxes=4):
    return TaskSpec(name=name, type="detection", label_key="boxes", dtype="float32", classes=list(classes),
                    shape=[max_boxes, 5], stats=DetectionStats(boxes=[3] * len(classes), images=3))


def image_dataset(tasks, height=32, width=48):
    """A DatasetSpec with one image feature and the given TaskSpecs."""
    image = FeatureSpec(name="image", kind="image", dtype="uint8", image=ImageInfo(
        height=height, width=width, channels=3, encoding="png"),
        stats=ImageStats(count=3, mean=[100.0] * 3, std=[50.0] * 3))
    return DatasetSpec(name="scenes", created="2026-01-01T00:00:00", rows_in=3, features=[image], tasks=list(tasks),
                       splits={"train": SplitSpec(pattern="train-*", num_examples=3, num_shards=1)})
