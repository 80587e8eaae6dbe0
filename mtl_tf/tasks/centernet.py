"""CenterNet (Zhou et al. 2019, "Objects as Points") in the graph: targets, loss and decoding.

The packed output of a detection task is ``(B, h, w, C + 4)`` on a grid of ``h x w`` cells:
per-class centre heatmaps (sigmoid), then the box size ``(w, h)`` as fractions of the image
and the centre's offset ``(dx, dy)`` inside its cell, in cells. Labels are the padded boxes
``(B, K, 5)`` ``[x_min, y_min, x_max, y_max, class]`` in relative coordinates, padding rows
with class -1. Everything here is vectorised over rows and boxes (no loop over boxes).
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

# Heatmap logits start at log(0.1 / 0.9): every cell begins with a 0.1 prior of being a centre,
# so the focal loss of the many empty cells does not swamp the first steps.
HEATMAP_PRIOR_BIAS = -2.19
GAUSSIAN_MIN_OVERLAP = 0.7
_PROB_FLOOR = 1e-4


class CenterTargets(NamedTuple):
    """What a batch of padded boxes asks of the packed output.

    Attributes:
        heatmap: ``(B, h, w, C)`` Gaussian centre targets, 1 at each box's centre cell.
        cells: ``(B, K, 2)`` int32 ``[row, column]`` of each box's centre cell.
        size: ``(B, K, 2)`` box ``(width, height)`` as fractions of the image.
        offset: ``(B, K, 2)`` centre ``(dx, dy)`` inside its cell, in cells.
        valid: ``(B, K)`` 1.0 for a box, 0.0 for padding.
    """

    heatmap: tf.Tensor
    cells: tf.Tensor
    size: tf.Tensor
    offset: tf.Tensor
    valid: tf.Tensor


def gaussian_radius(height: tf.Tensor, width: tf.Tensor, min_overlap: float = GAUSSIAN_MIN_OVERLAP) -> tf.Tensor:
    """How far (in cells) a box's corners may move while its IoU with the original stays at
    least ``min_overlap``: the smallest of CenterNet's three cases (the moved box overlapping,
    inside, or around the original). Each case is a quadratic in the distance; as in the
    reference implementation, its root is taken as ``(-b + sqrt(b^2 - 4ac)) / 2``."""
    height, width = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    area, perimeter = height * width, height + width
    o = min_overlap

    def root(a, b, c):
        return (-b + tf.sqrt(tf.maximum(b * b - 4.0 * a * c, 0.0))) / 2.0

    overlapping = root(1.0, -perimeter, area * (1.0 - o) / (1.0 + o))
    inside = root(4.0, -2.0 * perimeter, (1.0 - o) * area)
    around = root(4.0 * o, 2.0 * o * perimeter, (o - 1.0) * area)
    return tf.minimum(tf.minimum(overlapping, inside), around)


def center_targets(boxes: tf.Tensor, height: int | tf.Tensor, width: int | tf.Tensor, classes: int) -> CenterTargets:
    """The CenterNet targets of padded boxes on an ``height x width`` grid.

    Each box puts a Gaussian on its class's heatmap at its centre cell (the floor of its
    centre in cells, so the peak is exactly 1 there), with ``sigma = (2 r + 1) / 6`` and ``r``
    the :func:`gaussian_radius` of its size in cells, floored and at least 0. Boxes of one class
    merge by the maximum.

    Args:
        boxes: ``(B, K, 5)`` relative ``[x_min, y_min, x_max, y_max, class]``, class -1 for padding.
        height, width: the grid (the packed output's spatial size).
        classes: the number of classes.
    """
    boxes = tf.cast(boxes, tf.float32)
    h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    label = tf.cast(tf.round(boxes[..., 4]), tf.int32)
    valid_box = tf.logical_and(label >= 0, label < classes)
    valid = tf.cast(valid_box, tf.float32)
    x0, y0, x1, y1 = (boxes[..., i] for i in range(4))
    cx, cy = (x0 + x1) / 2.0 * w, (y0 + y1) / 2.0 * h
    col = tf.clip_by_value(tf.floor(cx), 0.0, w - 1.0)
    row = tf.clip_by_value(tf.floor(cy), 0.0, h - 1.0)
    size = tf.stack([x1 - x0, y1 - y0], axis=-1)
    offset = tf.stack([cx - col, cy - row], axis=-1)

    radius = tf.maximum(tf.floor(gaussian_radius((y1 - y0) * h, (x1 - x0) * w)), 0.0)
    sigma = (2.0 * radius + 1.0) / 6.0
    ys = tf.range(h)[None, None, :, None]
    xs = tf.range(w)[None, None, None, :]
    distance = tf.square(ys - row[..., None, None]) + tf.square(xs - col[..., None, None])
    gaussians = tf.exp(-distance / (2.0 * tf.square(sigma)[..., None, None])) * valid[..., None, None]
    heatmap = _max_per_class(gaussians, tf.where(valid_box, label, 0), classes)
    cells = tf.cast(tf.stack([row, col], axis=-1), tf.int32)
    return CenterTargets(tf.stop_gradient(heatmap), cells, size * valid[..., None], offset * valid[..., None], valid)


def _max_per_class(gaussians: tf.Tensor, label: tf.Tensor, classes: int) -> tf.Tensor:
    """``(B, K, h, w)`` per-box maps -> ``(B, h, w, C)``: each class's maximum over its boxes."""
    shape = tf.shape(gaussians)
    rows, boxes = shape[0], shape[1]
    segments = tf.range(rows)[:, None] * classes + label
    flat = tf.reshape(gaussians, tf.concat([[rows * boxes], shape[2:]], axis=0))
    merged = tf.math.unsorted_segment_max(flat, tf.reshape(segments, [-1]), rows * classes)
    merged = tf.reshape(merged, tf.concat([[rows, classes], shape[2:]], axis=0))
    # A class without a box gets the lowest float from the segment max: clip to 0.
    return tf.maximum(tf.transpose(merged, [0, 2, 3, 1]), 0.0)


def focal_loss(heatmap: tf.Tensor, target: tf.Tensor, alpha: float = 2.0, beta: float = 4.0) -> tf.Tensor:
    """CenterNet's penalty-reduced pixel-wise focal loss per row, divided by the row's number
    of centre cells (at least 1, so a row without boxes pays for its false positives only).

    ``-(1 - p)^alpha log p`` at the centre cells (target 1); elsewhere
    ``-(1 - t)^beta p^alpha log(1 - p)``: cells near a centre are penalised less.
    """
    p = tf.clip_by_value(tf.cast(heatmap, tf.float32), _PROB_FLOOR, 1.0 - _PROB_FLOOR)
    target = tf.cast(target, tf.float32)
    positive = tf.cast(target >= 1.0 - 1e-6, tf.float32)
    pos_loss = -tf.pow(1.0 - p, alpha) * tf.math.log(p) * positive
    neg_loss = -tf.pow(1.0 - target, beta) * tf.pow(p, alpha) * tf.math.log(1.0 - p) * (1.0 - positive)
    centres = tf.reduce_sum(positive, axis=[1, 2, 3])
    return tf.reduce_sum(pos_loss + neg_loss, axis=[1, 2, 3]) / tf.maximum(centres, 1.0)


def regression_l1(output: tf.Tensor, targets: CenterTargets, classes: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Per row, the mean absolute error of size and of offset at the boxes' centre cells
    (over boxes and both coordinates; 0 for a row without boxes)."""
    regressions = tf.gather_nd(tf.cast(output[..., classes:classes + 4], tf.float32), targets.cells, batch_dims=1)
    weight = targets.valid[..., None]
    count = tf.maximum(2.0 * tf.reduce_sum(targets.valid, axis=-1), 1.0)
    size = tf.reduce_sum(tf.abs(regressions[..., :2] - targets.size) * weight, axis=[1, 2]) / count
    offset = tf.reduce_sum(tf.abs(regressions[..., 2:] - targets.offset) * weight, axis=[1, 2]) / count
    return size, offset


def decode_detections(output: tf.Tensor, max_detections: int = 100) -> dict[str, tf.Tensor]:
    """Boxes from a packed CenterNet output, in the graph.

    A cell is a peak of its class's heatmap when it equals the 3x3 max-pool around it; the
    ``max_detections`` highest peaks over all classes and cells become detections, their box
    centred at the cell plus its predicted offset with the predicted size.

    Args:
        output: ``(B, h, w, C + 4)`` packed heatmaps, sizes and offsets.
        max_detections: detections per image (padded with score 0 and class -1 when the grid
            has fewer class-cells).

    Returns:
        ``boxes`` ``(B, K, 4)`` relative ``[x_min, y_min, x_max, y_max]`` clipped to [0, 1],
        ``scores`` ``(B, K)``, ``classes`` ``(B, K)`` int32, best first.
    """
    output = tf.cast(output, tf.float32)
    classes = int(output.shape[-1]) - 4
    if classes < 1:
        raise ValueError(f"decode_detections: the packed output needs C + 4 channels with C >= 1; received "
                         f"shape {output.shape}")
    heat, regressions = output[..., :classes], output[..., classes:classes + 4]
    peaks = heat * tf.cast(tf.equal(heat, tf.nn.max_pool2d(heat, 3, 1, "SAME")), tf.float32)
    shape = tf.shape(output)
    rows, h, w = shape[0], shape[1], shape[2]
    flat = tf.reshape(peaks, [rows, -1])
    k = tf.minimum(max_detections, tf.shape(flat)[1])
    scores, index = tf.math.top_k(flat, k=k)
    label, cell = index % classes, index // classes
    found = tf.gather(tf.reshape(regressions, [rows, -1, 4]), cell, batch_dims=1)
    col, row = tf.cast(cell % w, tf.float32), tf.cast(cell // w, tf.float32)
    cx = (col + found[..., 2]) / tf.cast(w, tf.float32)
    cy = (row + found[..., 3]) / tf.cast(h, tf.float32)
    half_w, half_h = found[..., 0] / 2.0, found[..., 1] / 2.0
    boxes = tf.clip_by_value(tf.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=-1), 0.0, 1.0)
    pad = max_detections - k
    boxes = tf.pad(boxes, [[0, 0], [0, pad], [0, 0]])
    scores = tf.pad(scores, [[0, 0], [0, pad]])
    label = tf.pad(tf.cast(label, tf.int32), [[0, 0], [0, pad]], constant_values=-1)
    return {"boxes": tf.ensure_shape(boxes, [None, max_detections, 4]),
            "scores": tf.ensure_shape(scores, [None, max_detections]),
            "classes": tf.ensure_shape(label, [None, max_detections])}
