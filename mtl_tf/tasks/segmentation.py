"""Semantic segmentation: one class per pixel, with an ignore value for unlabelled pixels."""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from mtl_tf.tasks import TASK_TYPES
from mtl_tf.tasks.dense import DenseTask, number_option, row_weights

# Median-frequency weights of very rare classes are capped, so a class seen on a handful
# of pixels cannot dominate the loss.
MAX_AUTO_CLASS_WEIGHT = 10.0
_EPSILON = 1e-7


@TASK_TYPES.register("segmentation")
class SegmentationTask(DenseTask):
    """Label: class index per pixel, int32 ``(B, H, W)``, ``ignore_index`` where a pixel has no
    label (an unlabelled row is all ``ignore_index``). Output: softmax probabilities, float32
    ``(B, H, W, classes)``, from a 1x1 convolution on the full-resolution feature map.

    Loss ``cross_entropy`` (per row: the mean over the row's labelled pixels; 0 for a row
    without one), options:

    - ``dice`` (default 0): weight of a soft Dice loss added to the cross-entropy:
      ``1 - mean_c 2 |p_c y_c| / (|p_c| + |y_c|)`` over the classes present in the row's
      labelled pixels.
    - ``class_weights``: ``none`` (default), a list of one weight per class, or ``auto``:
      median-frequency balancing from the train-split pixel counts in dataset.json
      (``SegmentationStats.pixels``): ``w_c = median_f / f_c`` with ``f_c`` the class's share
      of labelled pixels and the median over the classes seen, capped at
      ``MAX_AUTO_CLASS_WEIGHT`` (10); a class never seen gets 1. A weighted row loss is
      ``sum(w * ce) / sum(w)`` over its pixels, so weights shift the balance between classes,
      not the loss scale.

    Loss ``focal`` (Lin et al., 2017): per pixel ``-(1 - p_t)^gamma log p_t`` with ``p_t`` the
    probability of the pixel's class, so the many easy pixels (background) count little;
    options ``gamma`` (default 2), ``dice`` and ``class_weights`` as above (weighted as the
    cross-entropy is).

    Metrics: ``miou`` (mean IoU over the classes present in the ground truth, ignored pixels
    excluded), ``pixel_accuracy`` (over labelled pixels), ``dice`` (per class ``2 |P n T| /
    (|P| + |T|)`` over the split's pixels, averaged over the classes present in the ground
    truth) and ``foreground_dice`` (the same without class 0, the background: a lesion's
    Dice when the classes are [background, lesion]); all over the whole split.

    Args:
        ignore_index: the mask value of unlabelled pixels (dataset.json's value wins; they
            must agree).
        probabilities: the export also returns ``<task>_probabilities`` (B, H, W, classes).
        (others): see :class:`~mtl_tf.tasks.dense.DenseTask`.
    """

    registered_type = "segmentation"
    default_metrics = ("miou", "pixel_accuracy")
    label_dtype = tf.int32
    losses = {"cross_entropy": ("dice", "class_weights"), "focal": ("gamma", "dice", "class_weights")}
    default_loss = "cross_entropy"

    def __init__(self, name: str, classes: Sequence[str] | None = None, *, ignore_index: int = 255,
                 probabilities: bool = False, **options: Any):
        super().__init__(name, classes=classes, **options)
        if not self.classes:
            raise ValueError(f"{self._where('classes')}: a segmentation task needs its class names; received "
                             f"{classes!r}")
        if self.spec.ignore_index is not None and self.spec.ignore_index != ignore_index:
            raise ValueError(f"{self._where('ignore_index')}: {ignore_index} differs from the dataset's "
                             f"{self.spec.ignore_index}; run `mtl data preprocess` again for this recipe")
        if 0 <= ignore_index < len(self.classes):
            raise ValueError(f"{self._where('ignore_index')} must not be a class index (0..{len(self.classes) - 1}); "
                             f"received {ignore_index}")
        self.ignore_index = int(ignore_index)
        self.probabilities = bool(probabilities)
        self.dice_weight = number_option(self._where("loss.dice"), self.loss_options.get("dice", 0.0))
        self.class_weights = self._class_weights(self.loss_options.get("class_weights"))
        self.focal_gamma = (number_option(self._where("loss.gamma"), self.loss_options.get("gamma", 2.0))
                            if self.loss_name == "focal" else None)

    @classmethod
    def recipe_options(cls, task, spec, path):
        return {**super().recipe_options(task, spec, path), "ignore_index": task.ignore_index}

    def _class_weights(self, value: Any) -> list[float] | None:
        where = self._where("loss.class_weights")
        if value is None or value == "none":
            return None
        if value == "auto":
            stats = self.spec.stats
            if stats is None or not hasattr(stats, "pixels"):
                raise ValueError(f"{where}: auto needs the train-split pixel counts of dataset.json "
                                 "(SegmentationStats); this dataset has none: give a list or none")
            if len(stats.pixels) != len(self.classes):
                raise ValueError(f"{where}: dataset.json counts pixels of {len(stats.pixels)} classes, the task "
                                 f"has {len(self.classes)}")
            return median_frequency_weights(stats.pixels)
        if isinstance(value, (list, tuple)):
            if len(value) != len(self.classes):
                raise ValueError(f"{where}: needs one weight per class ({len(self.classes)}); received "
                                 f"{len(value)}: {list(value)!r}")
            return [number_option(f"{where}.{i}", v) for i, v in enumerate(value)]
        raise ValueError(f"{where}: expected none, auto or a list of {len(self.classes)} numbers; "
                         f"received {value!r}")

    # --- data ---------------------------------------------------------------------------------
    def mask(self, label):
        """Fallback presence mask (the reader gives the real one): some pixel is labelled."""
        return tf.cast(tf.reduce_any(tf.not_equal(label, self.ignore_index), axis=[1, 2]), tf.float32)

    def missing_label(self, rows):
        return tf.fill([rows, *self.label_shape], tf.constant(self.ignore_index, self.label_dtype))

    # --- model --------------------------------------------------------------------------------
    @property
    def units(self):
        return len(self.classes)

    def head(self, x):
        logits = keras.layers.Conv2D(self.units, 1, name=f"{self.name}_logits")(x)
        return keras.layers.Activation("softmax", dtype="float32", name=self.name)(logits)

    def per_example_loss(self, label, output):
        probs = tf.cast(output, tf.float32)
        valid, safe = valid_pixels(label, self.units, self.ignore_index)
        truth = tf.one_hot(safe, self.units) * valid[..., None]
        p_true = tf.clip_by_value(tf.reduce_sum(probs * truth, axis=-1), _EPSILON, 1.0)
        ce = -tf.math.log(p_true)
        if self.focal_gamma is not None:
            ce *= tf.pow(1.0 - p_true, self.focal_gamma)
        weights = valid
        if self.class_weights is not None:
            weights = tf.gather(tf.constant(self.class_weights, tf.float32), safe) * valid
        loss = tf.math.divide_no_nan(tf.reduce_sum(weights * ce, axis=[1, 2]), tf.reduce_sum(weights, axis=[1, 2]))
        if self.dice_weight:
            loss += self.dice_weight * soft_dice_loss(probs * valid[..., None], truth)
        return loss

    def serving_outputs(self, output):
        outputs = {self.name: tf.argmax(output, axis=-1, output_type=tf.int32)}
        if self.probabilities:
            outputs[f"{self.name}_probabilities"] = output
        return outputs

    # --- metrics ------------------------------------------------------------------------------
    def metric_factories(self):
        n = len(self.classes or [])
        return {
            "miou": lambda: SegmentationMeanIoU(n, self.ignore_index, name="miou"),
            "pixel_accuracy": lambda: PixelAccuracy(n, self.ignore_index, name="pixel_accuracy"),
            "dice": lambda: SegmentationDice(n, self.ignore_index, name="dice"),
            "foreground_dice": lambda: SegmentationDice(n, self.ignore_index, foreground=True,
                                                        name="foreground_dice"),
        }

    def metric_inputs(self, label, output):
        return label, tf.argmax(output, axis=-1, output_type=tf.int32)

    def describe(self):
        described = {**super().describe(), "ignore_index": self.ignore_index, "loss": self.loss_name,
                     "dice": self.dice_weight, "class_weights": self.class_weights}
        if self.focal_gamma is not None:
            described["gamma"] = self.focal_gamma
        return described


def median_frequency_weights(pixels: Sequence[int], cap: float = MAX_AUTO_CLASS_WEIGHT) -> list[float]:
    """Median-frequency class weights from pixel counts: ``min(median_f / f_c, cap)``, with the
    median over the classes seen; a class never seen gets 1."""
    counts = np.asarray(pixels, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return [1.0] * len(counts)
    freq = counts / total
    seen = freq > 0
    median = np.median(freq[seen])
    weights = np.where(seen, median / np.where(seen, freq, 1.0), 1.0)
    return [float(w) for w in np.minimum(weights, cap)]


def valid_pixels(label: tf.Tensor, classes: int, ignore_index: int) -> tuple[tf.Tensor, tf.Tensor]:
    """(1.0 where a pixel holds a class index, else 0.0; the label with other values set to 0)."""
    label = tf.cast(label, tf.int32)
    valid = tf.logical_and(tf.logical_and(label >= 0, label < classes), label != ignore_index)
    return tf.cast(valid, tf.float32), tf.where(valid, label, tf.zeros_like(label))


def soft_dice_loss(probs: tf.Tensor, truth: tf.Tensor) -> tf.Tensor:
    """Per row ``1 - mean over present classes of 2|p y| / (|p| + |y|)``; 0 for a row with no
    labelled pixel. ``probs`` and the one-hot ``truth`` are zero on unlabelled pixels."""
    intersection = tf.reduce_sum(probs * truth, axis=[1, 2])
    truth_sum = tf.reduce_sum(truth, axis=[1, 2])
    dice = 2.0 * intersection / (tf.reduce_sum(probs, axis=[1, 2]) + truth_sum + _EPSILON)
    present = tf.cast(truth_sum > 0, tf.float32)
    count = tf.reduce_sum(present, axis=-1)
    return tf.where(count > 0, 1.0 - tf.math.divide_no_nan(tf.reduce_sum(dice * present, axis=-1), count), 0.0)


def _class_ids(y_pred: tf.Tensor, y_true: tf.Tensor) -> tf.Tensor:
    """Class ids from ids or from probabilities (one more axis than the label)."""
    if len(y_pred.shape) == len(y_true.shape) + 1:
        return tf.argmax(y_pred, axis=-1, output_type=tf.int32)
    return tf.cast(y_pred, tf.int32)


@keras.saving.register_keras_serializable(package="mtl_tf")
class SegmentationMeanIoU(keras.metrics.MeanIoU):
    """Mean IoU over the classes present in the ground truth, accumulated over the split.

    ``keras.metrics.MeanIoU`` with ``ignore_class`` (pixels with the ignore value are left
    out), except that its mean also counts a class only predicted, never in the truth, as
    IoU 0; here such a class is left out, as the segmentation literature reports mIoU.
    ``sample_weight`` is one weight per row (the task's presence mask), spread over its
    pixels. ``y_pred`` is class ids (or probabilities, one axis more).

    Args:
        num_classes: the task's classes.
        ignore_class: the label value of unlabelled pixels.
    """

    def __init__(self, num_classes: int, ignore_class: int | None = None, name: str = "miou",
                 dtype: str = "float32"):
        super().__init__(num_classes=num_classes, name=name, dtype=dtype, ignore_class=ignore_class)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = _class_ids(y_pred, y_true)
        valid, safe = valid_pixels(y_true, self.num_classes, -1 if self.ignore_class is None else self.ignore_class)
        return super().update_state(safe, y_pred, row_weights(sample_weight, safe) * valid)

    def per_class(self) -> tf.Tensor:
        """IoU per class, NaN for a class absent from the ground truth."""
        cm = tf.cast(self.total_cm, tf.float32)
        hits = tf.linalg.diag_part(cm)
        truth = tf.reduce_sum(cm, axis=1)
        union = truth + tf.reduce_sum(cm, axis=0) - hits
        return tf.where(truth > 0, tf.math.divide_no_nan(hits, union), float("nan"))

    def result(self):
        iou = self.per_class()
        present = tf.logical_not(tf.math.is_nan(iou))
        return tf.math.divide_no_nan(tf.reduce_sum(tf.where(present, iou, 0.0)),
                                     tf.reduce_sum(tf.cast(present, tf.float32)))

    def get_config(self):
        return {"num_classes": self.num_classes, "ignore_class": self.ignore_class, "name": self.name,
                "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="mtl_tf")
class SegmentationDice(SegmentationMeanIoU):
    """Dice per class over the split's pixels, ``2 |P n T| / (|P| + |T|)``, averaged over the
    classes present in the ground truth (with ``foreground``, leaving out class 0).

    The confusion matrix is accumulated as for :class:`SegmentationMeanIoU` (ignored pixels
    left out, one weight per row); pooled over the split, so a large lesion weighs more than
    a small one (a per-image mean Dice would weigh them alike).
    """

    def __init__(self, num_classes: int, ignore_class: int | None = None, foreground: bool = False,
                 name: str = "dice", dtype: str = "float32"):
        super().__init__(num_classes=num_classes, ignore_class=ignore_class, name=name, dtype=dtype)
        self.foreground = bool(foreground)

    def per_class(self) -> tf.Tensor:
        """Dice per class, NaN for a class absent from the ground truth."""
        cm = tf.cast(self.total_cm, tf.float32)
        hits = tf.linalg.diag_part(cm)
        truth = tf.reduce_sum(cm, axis=1)
        both = truth + tf.reduce_sum(cm, axis=0)
        return tf.where(truth > 0, tf.math.divide_no_nan(2.0 * hits, both), float("nan"))

    def result(self):
        dice = self.per_class()
        if self.foreground:
            dice = dice[1:]
        present = tf.logical_not(tf.math.is_nan(dice))
        return tf.math.divide_no_nan(tf.reduce_sum(tf.where(present, dice, 0.0)),
                                     tf.reduce_sum(tf.cast(present, tf.float32)))

    def get_config(self):
        return {**super().get_config(), "foreground": self.foreground}


@keras.saving.register_keras_serializable(package="mtl_tf")
class PixelAccuracy(keras.metrics.Metric):
    """Share of labelled pixels whose predicted class is right, over the split.

    ``sample_weight`` is one weight per row (the presence mask); pixels with the ignore value
    (or any value outside ``0..num_classes-1``) do not count. ``y_pred``: class ids or
    probabilities.
    """

    def __init__(self, num_classes: int, ignore_class: int | None = None, name: str = "pixel_accuracy",
                 dtype: str = "float32"):
        super().__init__(name=name, dtype=dtype)
        self.num_classes, self.ignore_class = int(num_classes), ignore_class
        self.correct = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = _class_ids(y_pred, y_true)
        valid, safe = valid_pixels(y_true, self.num_classes, -1 if self.ignore_class is None else self.ignore_class)
        weight = row_weights(sample_weight, safe) * valid
        self.correct.assign_add(tf.reduce_sum(weight * tf.cast(tf.equal(safe, y_pred), tf.float32)))
        self.total.assign_add(tf.reduce_sum(weight))

    def result(self):
        return tf.math.divide_no_nan(self.correct, self.total)

    def get_config(self):
        return {"num_classes": self.num_classes, "ignore_class": self.ignore_class, "name": self.name,
                "dtype": self.dtype}
