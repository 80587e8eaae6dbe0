"""Multiply-adds and trainable parameters of the default image models at 96x128.

Every model is built by ``build_model`` from a recipe with one 96x128 RGB image feature, the
trunks, decoders and architectures with their default options:

- ``trunks``: architecture hps, one dense task (a 1x1 convolution to 8 classes at full
  resolution, the segmentation head's shape), for each trunk and each decoder;
- ``architectures``: trunk resnet and decoder fpn (defaults), three tasks: two dense (8
  classes, and 1 channel like depth) and one image-level (tower mlp [32], 4 classes); also
  the multiply-adds of serving the first dense task alone (its per-task sub-model).

Multiply-adds per example are :func:`mtl_tf.models.flops_per_example` (convolutions and
matrix products, op by op on the traced graph). The dense heads here are 1x1 convolutions
standing in for the segmentation and depth heads (the same shape: a 1x1 convolution per
pixel); nothing is trained or timed.

    python bench/image_models.py        # writes bench/results/image_models.json
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402

from bench.common import write_result  # noqa: E402
from mtl_tf.data.spec import DatasetSpec  # noqa: E402
from mtl_tf.models import build_model, flops_per_example, parameter_counts, task_submodel  # noqa: E402
from mtl_tf.recipe import parse_recipe  # noqa: E402
from mtl_tf.tasks import MulticlassTask  # noqa: E402
from mtl_tf.tasks.base import TaskType  # noqa: E402

HEIGHT, WIDTH = 96, 128
TRUNKS = {"conv": "conv", "resnet": "resnet", "unet": "unet",
          "keras_app ResNet50": {"name": "keras_app", "application": "ResNet50"},
          "keras_app MobileNetV3Small": {"name": "keras_app", "application": "MobileNetV3Small"}}
DECODERS = ["fpn", "unet", "aspp"]
ARCHITECTURES = ["hps", "sps", "cross_stitch", "eds", "mmoe", "dselect_k", "ple", "mtan", "etr_nlp"]


class DenseHead(TaskType):
    """A dense task's shape: a 1x1 convolution per pixel at the input resolution."""

    registered_type = "segmentation"
    default_metrics = ("loss",)
    dense = True
    output_stride = 1

    def __init__(self, name: str, channels: int):
        super().__init__(name, classes=[f"c{i}" for i in range(channels)])

    def head(self, x):
        return keras.layers.Conv2D(len(self.classes), 1, dtype="float32", name=self.name)(x)

    def metric_factories(self):
        return {"loss": lambda: keras.metrics.Mean(name="loss")}


def build(architecture, trunk, decoder, tasks) -> keras.Model:
    keras.utils.set_random_seed(0)
    features = [{"name": "image", "kind": "image", "height": HEIGHT, "width": WIDTH, "channels": 3}]
    recipe_tasks = [{"name": t.name, "type": t.registered_type, "label": t.name, "classes": t.classes} for t in tasks]
    model = {"architecture": architecture, "trunk": trunk, "tower": {"name": "mlp", "units": [32]}}
    if decoder is not None:
        model["decoder"] = decoder
    recipe = parse_recipe({"name": "bench", "data": {"source": {"kind": "npz", "path": "x.npz"}, "features": features,
                                                      "output_dir": "unused"}, "tasks": recipe_tasks, "model": model})
    spec = DatasetSpec.model_validate({
        "name": "bench", "created": "2026-01-01T00:00:00Z", "rows_in": 1, "splits": {},
        "features": [{"name": "image", "kind": "image", "dtype": "uint8",
                      "image": {"height": HEIGHT, "width": WIDTH, "channels": 3, "encoding": "png"},
                      "stats": {"count": 1, "mean": [120.0] * 3, "std": [60.0] * 3}}],
        "tasks": [{"name": t.name, "type": t.registered_type, "label_key": t.name,
                   "dtype": "int32" if t.dense else "int64", "classes": t.classes} for t in tasks]})
    return build_model(recipe, spec, tasks=tasks)


def figures(model: keras.Model) -> dict:
    return {"multiply_adds": flops_per_example(model), "trainable_parameters": parameter_counts(model)["trainable"]}


def main() -> None:
    trunks = {}
    for label, trunk in TRUNKS.items():
        for decoder in DECODERS:
            result = figures(build("hps", trunk, decoder, [DenseHead("semantic", 8)]))
            trunks[f"{label} + {decoder}"] = result
            print(f"{label:28s} {decoder:5s} {result['multiply_adds'] / 1e6:10.1f} M  "
                  f"{result['trainable_parameters'] / 1e6:8.3f} M params", flush=True)
    architectures = {}
    for name in ARCHITECTURES:
        tasks = [DenseHead("semantic", 8), DenseHead("depth", 1), MulticlassTask("scene", classes=list("abcd"))]
        model = build(name, "resnet", None, tasks)
        result = {**figures(model), "semantic_alone_multiply_adds": flops_per_example(task_submodel(model, "semantic"))}
        architectures[name] = result
        print(f"{name:13s} {result['multiply_adds'] / 1e6:10.1f} M  {result['trainable_parameters'] / 1e6:8.3f} M "
              f"params  semantic alone {result['semantic_alone_multiply_adds'] / 1e6:10.1f} M", flush=True)
    write_result("image_models", {"input": [HEIGHT, WIDTH, 3], "trunks_with_decoders": trunks,
                                  "architectures": architectures})


if __name__ == "__main__":
    main()
