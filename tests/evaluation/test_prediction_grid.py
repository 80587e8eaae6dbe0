"""The prediction grid draws what the served outputs say: a wrong pixel shows as a wrong pixel."""

import numpy as np
from PIL import Image

from mtl_tf.data.reader import make_dataset
from mtl_tf.evaluation.image_grid import Caption, draw_boxes, text_tile
from mtl_tf.evaluation.prediction_grid import WRONG, collect_examples, prediction_grid
from mtl_tf.tasks import DepthTask, DetectionTask, MulticlassTask, SegmentationTask
from mtl_tf.tasks.base import find_task_spec
from tests.helpers.tiny_images import (CLASSES, IGNORE, MAX_BOXES, OBJECT_CLASSES, SCENES, make_tiny_images,
                                      tiny_image_model)

HEIGHT, WIDTH, SCALE, GAP, TITLE = 16, 24, 2, 2, 12


def real_tasks(spec):
    return [SegmentationTask("semantic", classes=CLASSES, spec=find_task_spec(spec, "semantic"), ignore_index=IGNORE),
            DepthTask("depth", spec=find_task_spec(spec, "depth")),
            DetectionTask("objects", classes=OBJECT_CLASSES, spec=find_task_spec(spec, "objects"),
                          max_boxes=MAX_BOXES, image_size=(HEIGHT, WIDTH)),
            MulticlassTask("scene", classes=SCENES)]


def tile(grid: np.ndarray, row: int, column: int) -> np.ndarray:
    """The tile at (row, column) of a grid laid out as image_grid documents it."""
    top = TITLE + GAP + row * (HEIGHT * SCALE + GAP)
    left = GAP + column * (WIDTH * SCALE + GAP)
    return grid[top:top + HEIGHT * SCALE, left:left + WIDTH * SCALE]


def test_the_grid_shows_the_served_classes_and_differs_from_the_truth_exactly_where_the_model_is_wrong(tmp_path):
    spec = make_tiny_images(tmp_path, rows=24, height=HEIGHT, width=WIDTH)
    tasks = real_tasks(spec)
    model = tiny_image_model(spec)  # untrained: wrong on many pixels, right on some
    test = make_dataset(spec, "test", tasks, batch_size=4)
    path = prediction_grid(model, tasks, test, "image", tmp_path / "predictions.png", count=5, scale=SCALE)

    grid = np.asarray(Image.open(path).convert("RGB"))
    # input, then truth + prediction for semantic, depth and objects, then one labels column;
    # the test split holds 6 rows, 5 are drawn
    assert grid.shape == (TITLE + 5 * (HEIGHT * SCALE + GAP) + GAP, 8 * (WIDTH * SCALE + GAP) + GAP, 3)

    features, labels, masks = next(iter(make_dataset(spec, "test", tasks, batch_size=5)))
    served = np.asarray(tasks[0].serving_outputs(model({"image": features["image"]})["semantic"])["semantic"])
    checked = 0
    for row in range(5):
        truth_tile, pred_tile = tile(grid, row, 1), tile(grid, row, 2)
        differs = (truth_tile != pred_tile).any(axis=-1)[::SCALE, ::SCALE]
        if masks["semantic"][row] == 0:  # no label: a grey truth tile
            assert (truth_tile == 128).all()
            continue
        label = np.asarray(labels["semantic"][row])
        wrong = (served[row] != label) | (label == IGNORE)  # an ignored pixel is black in the truth
        assert 0 < wrong.sum() < wrong.size
        np.testing.assert_array_equal(differs, wrong)
        checked += 1
    assert checked >= 2


def test_image_level_predictions_are_written_green_when_right_and_red_when_wrong(tmp_path):
    spec = make_tiny_images(tmp_path, rows=24, height=HEIGHT, width=WIDTH)
    tasks = real_tasks(spec)
    model = tiny_image_model(spec)
    examples = collect_examples(model, tasks, make_dataset(spec, "test", tasks, batch_size=3), "image", count=6)
    assert len(examples) == 6
    for example in examples:
        predicted = example["prediction"]["scene"]
        truth = example["truth"].get("scene")
        assert isinstance(predicted, Caption) and predicted.text.split()[0] in SCENES
        if truth is not None:
            right = predicted.text.split()[0] == truth
            assert (predicted.colour == WRONG) != right
    drawn = text_tile([Caption("scene: fog"), Caption("  pred rain 0.61", WRONG)], 40, 120)
    reddish = (drawn[..., 0] > 200) & (drawn[..., 1] < 150)
    assert reddish[20:].any() and not reddish[:12].any()  # the second line only


def test_detections_below_the_score_threshold_are_not_drawn_and_drawn_ones_carry_class_and_score(tmp_path):
    spec = make_tiny_images(tmp_path, rows=24, height=HEIGHT, width=WIDTH)
    tasks = real_tasks(spec)
    model = tiny_image_model(spec)
    batches = make_dataset(spec, "test", tasks, batch_size=6)
    features, _, _ = next(iter(batches))
    decoded = tasks[2].serving_outputs(model({"image": features["image"]})["objects"])
    scores = np.asarray(decoded["objects_scores"])
    threshold = float(np.median(scores[scores > 0]))
    examples = collect_examples(model, tasks, batches, "image", count=6, score_threshold=threshold)
    for row, example in enumerate(examples):
        drawn = example["prediction"]["objects"]
        found = np.asarray(decoded["objects_classes"][row]) >= 0
        assert len(drawn) == int(((scores[row] >= threshold) & found).sum())
        assert all(box[5] >= threshold and 0 <= box[4] < len(OBJECT_CLASSES) for box in drawn)

    plain = draw_boxes(np.zeros((20, 40, 3), np.uint8), [[0.5, 0.6, 0.9, 0.9, 1, 0.87]], OBJECT_CLASSES,
                       relative=True, scale=2)
    captioned = draw_boxes(np.zeros((20, 40, 3), np.uint8), [[0.5, 0.6, 0.9, 0.9, 1, 0.87]], OBJECT_CLASSES,
                           relative=True, scale=2, captions=True)
    # The caption sits above the box's top-left corner (y = 24 at scale 2), in the box's colour.
    assert not plain[:23].any() and captioned[10:23, 40:].any()
