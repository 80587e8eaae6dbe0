"""Keras Applications backbones as image trunks, built offline (never downloaded)."""

from __future__ import annotations

import inspect
import os
from typing import Any, Mapping

import keras

from mtl_tf.errors import did_you_mean
from mtl_tf.models.trunks import TRUNKS
from mtl_tf.models.trunks.base import pyramid_of
from mtl_tf.models.pyramid import Pyramid

#: The layer whose output is each application's map at strides 4, 8, 16 and 32: the last
#: layer at that resolution with a fixed name (layers Keras names by a global counter, such
#: as MobileNetV3's activations, are avoided: their names change with what was built before).
PYRAMID_LAYERS: dict[str, tuple[str, str, str, str]] = {
    "ResNet50": ("conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
    "ResNet101": ("conv2_block3_out", "conv3_block4_out", "conv4_block23_out", "conv5_block3_out"),
    "ResNet152": ("conv2_block3_out", "conv3_block8_out", "conv4_block36_out", "conv5_block3_out"),
    "MobileNetV2": ("block_3_expand_relu", "block_6_expand_relu", "block_13_expand_relu", "out_relu"),
    "MobileNetV3Small": ("expanded_conv_project_bn", "expanded_conv_2_add", "expanded_conv_7_add",
                         "expanded_conv_10_add"),
    "MobileNetV3Large": ("expanded_conv_2_add", "expanded_conv_5_add", "expanded_conv_11_add",
                         "expanded_conv_14_add"),
    "EfficientNetV2B0": ("block2b_add", "block3b_add", "block5e_add", "top_activation"),
    "EfficientNetV2B1": ("block2c_add", "block3c_add", "block5f_add", "top_activation"),
    "EfficientNetV2B2": ("block2c_add", "block3c_add", "block5f_add", "top_activation"),
    "EfficientNetV2B3": ("block2c_add", "block3c_add", "block5g_add", "top_activation"),
    "EfficientNetV2S": ("block2d_add", "block3d_add", "block5i_add", "top_activation"),
    "DenseNet121": ("pool2_conv", "pool3_conv", "pool4_conv", "relu"),
    "ConvNeXtTiny": ("convnext_tiny_stage_0_block_2_identity", "convnext_tiny_stage_1_block_2_identity",
                     "convnext_tiny_stage_2_block_8_identity", "convnext_tiny_stage_3_block_2_identity"),
}
STRIDES = [4, 8, 16, 32]
# Constructor arguments the trunk sets itself.
_RESERVED = ("include_top", "weights", "input_tensor", "input_shape", "pooling", "classes",
             "classifier_activation", "include_preprocessing", "name")


@TRUNKS.register("keras_app")
@keras.saving.register_keras_serializable(package="mtl_tf")
class KerasApplicationTrunk(keras.layers.Layer):
    """A Keras Applications backbone (``ResNet50``, ``MobileNetV3Small``, ...) as an image trunk.

    Built with ``include_top=False`` and ``weights=None`` for the model's input size, so
    nothing is ever downloaded: ``weights`` is None (random initialisation) or the path of a
    local ``.weights.h5`` file saved from the same application (``app.save_weights(path)``),
    loaded once when the model is built; a saved model holds the weights itself and reloads
    without the file. ``weights: imagenet`` is refused.

    Input: the model's shared normalisation layer gives the application the image
    standardised per channel with the dataset's statistics (mean 0, std 1 on the train
    split). The applications' own preprocessing is switched off (``include_preprocessing=False``
    for MobileNetV3, EfficientNetV2 and ConvNeXt; ResNet, MobileNetV2 and DenseNet have none
    inside the model), so no application rescales the image a second time. Trained from
    scratch this is the usual scale; weights pretrained elsewhere were trained on their own
    input scale (caffe-style BGR for ResNet, [-1, 1] for MobileNet, ImageNet mean/std for
    DenseNet and ConvNeXt), to which fine-tuning adapts.

    Pyramid: the maps at strides 4, 8, 16 and 32 are the outputs of the layers in
    :data:`PYRAMID_LAYERS`. Height and width must be multiples of 32 (at least 32).

    Args:
        application: a name in :data:`PYRAMID_LAYERS`.
        weights: None, or the path of a local ``.weights.h5`` file.
        options: further keyword arguments of the application (``alpha``, ``minimalistic``...).
        global_pool: average the last map over space (plain calls, not in image models).
        return_pyramid: return the four maps (set by :meth:`pyramid`).
        **kwargs: standard Keras layer arguments (``name``, ``dtype``...).

    Example (recipe):
        trunk: {name: keras_app, application: MobileNetV3Small}
        trunk: {name: keras_app, application: ResNet50, weights: /models/resnet50.weights.h5}
    """

    options = ["application", "weights", "options", "global_pool"]
    spatial = True
    pooled = True
    default_decoder = "fpn"

    def __init__(self, application: str = "ResNet50", weights: str | None = None,
                 options: Mapping[str, Any] | None = None, global_pool: bool = True,
                 return_pyramid: bool = False, **kwargs):
        super().__init__(**kwargs)
        if application not in PYRAMID_LAYERS:
            hint = did_you_mean(str(application), PYRAMID_LAYERS)
            raise ValueError(f"application {application!r} is not supported{hint}; "
                             f"allowed: {', '.join(PYRAMID_LAYERS)}")
        self.application = application
        self.weights_path = check_weights(weights, application)
        self.app_options = check_app_options(options, application)
        self.global_pool, self.return_pyramid = bool(global_pool), bool(return_pyramid)
        self.pooled = self.global_pool
        self.pool = keras.layers.GlobalAveragePooling2D(name="pool") if self.global_pool else None
        self.features = None

    @property
    def pyramid_strides(self) -> list[int]:
        return list(STRIDES)

    def pyramid(self, x: keras.KerasTensor) -> Pyramid:
        """Calls the backbone on ``x`` and returns its maps at strides 4, 8, 16 and 32."""
        if self.built and not self.return_pyramid:
            raise ValueError(f"layer '{self.name}' was already called for its last map; make a fresh "
                             "trunk for a pyramid")
        self.return_pyramid = True
        return pyramid_of(self(x), STRIDES)

    def build(self, input_shape):
        if len(input_shape) != 4 or None in tuple(input_shape[1:]):
            raise ValueError(f"layer '{self.name}': {self.application} needs images of a known size (batch, "
                             f"height, width, channels); received shape {tuple(input_shape)}")
        backbone = self._application(tuple(input_shape[1:]))
        names = PYRAMID_LAYERS[self.application]
        known = {layer.name for layer in backbone.layers}
        missing = [n for n in names if n not in known]
        if missing:
            raise ValueError(f"layer '{self.name}': {self.application} with options {self.app_options} has no "
                             f"layer(s) {', '.join(missing)} to take the pyramid from")
        self.features = keras.Model(backbone.inputs, [backbone.get_layer(n).output for n in names],
                                    name="features")

    def _application(self, shape):
        constructor = getattr(keras.applications, self.application)
        arguments = {"include_top": False, "weights": None, "input_shape": shape, **self.app_options}
        if "include_preprocessing" in inspect.signature(constructor).parameters:
            arguments["include_preprocessing"] = False
        try:
            backbone = constructor(**arguments)
        except ValueError as err:
            raise ValueError(f"layer '{self.name}': {self.application} cannot be built for input {shape}: "
                             f"{str(err).splitlines()[0]}") from None
        if self.weights_path is not None:
            try:
                backbone.load_weights(self.weights_path)
            except (ValueError, OSError, KeyError) as err:
                raise ValueError(f"layer '{self.name}': weights file {self.weights_path!r} does not fit "
                                 f"{self.application} at input {shape}: {str(err).splitlines()[0]}") from None
        return backbone

    def call(self, inputs, training=None):
        maps = self.features(inputs, training=training)
        if self.return_pyramid:
            return list(maps)
        return self.pool(maps[-1]) if self.pool is not None else maps[-1]

    def get_config(self):
        # The weights travel with a saved model; the file is read only when first built.
        return {**super().get_config(), "application": self.application, "weights": None,
                "options": dict(self.app_options), "global_pool": self.global_pool,
                "return_pyramid": self.return_pyramid}


def check_weights(weights: Any, application: str) -> str | None:
    """None or the path of an existing local ``.weights.h5`` file; anything else is refused."""
    if weights is None:
        return None
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"keras_app weights must be null or the path of a local .weights.h5 file; "
                         f"received {weights!r}")
    path = os.fspath(weights)
    if path == "imagenet":
        raise ValueError(f"keras_app weights 'imagenet' would download {application}'s weights, which this "
                         "framework never does; save them once where there is a network "
                         f"(keras.applications.{application}(include_top=False).save_weights('x.weights.h5')) "
                         "and pass that local path, or use weights: null")
    if not path.endswith(".weights.h5"):
        raise ValueError(f"keras_app weights must be a local .weights.h5 file (Keras save_weights); "
                         f"received {path!r}")
    if not os.path.isfile(path):
        raise ValueError(f"keras_app weights file not found: {path!r}")
    return path


def check_app_options(options: Any, application: str) -> dict[str, Any]:
    """The application's extra keyword arguments, refusing those the trunk sets itself."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ValueError(f"keras_app options must be a mapping of {application} arguments; received {options!r}")
    reserved = sorted(set(options) & set(_RESERVED))
    if reserved:
        raise ValueError(f"keras_app options: {', '.join(reserved)} are set by the trunk; received {dict(options)!r}")
    allowed = [p for p in inspect.signature(getattr(keras.applications, application)).parameters
               if p not in _RESERVED]
    unknown = [k for k in options if k not in allowed]
    if unknown:
        raise ValueError(f"keras_app options: {application} has no argument {unknown[0]!r}"
                         f"{did_you_mean(unknown[0], allowed)}; allowed: {', '.join(allowed)}")
    return dict(options)
