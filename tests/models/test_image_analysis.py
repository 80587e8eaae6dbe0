"""flops_per_example and parameter_breakdown on image models, against hand counts."""

import keras

from mtl_tf.models import flops_per_example, parameter_breakdown, task_submodel
from mtl_tf.models.layers import ConvBlock
from tests.models.image_toy import image_model, image_tasks


def test_multiply_adds_of_a_tiny_image_model_by_hand():
    # 8x8x1 image; trunk: one residual block, stride 2, 2 channels; fpn decoder, 3 channels;
    # mask: 1x1 conv to 2 classes at 8x8; scene: pooled -> tower 8 -> 3 classes.
    model = image_model("hps", trunk={"name": "conv", "filters": [2], "strides": [2], "batch_norm": False},
                        decoder={"name": "fpn", "filters": 3}, shape=(8, 8, 1))
    trunk = 4 * 4 * 2 * (3 * 3 * 1) + 4 * 4 * 2 * (3 * 3 * 2) + 4 * 4 * 2 * 1  # conv_a, conv_b, 1x1 shortcut
    decoder = 4 * 4 * 3 * 2 + 4 * 4 * 3 * (3 * 3 * 3)  # lateral 1x1, smoothing 3x3 (then upsampled)
    mask_head = 8 * 8 * 2 * 3
    scene = 2 * 8 + 8 * 3
    assert flops_per_example(model) == trunk + decoder + mask_head + scene
    assert flops_per_example(task_submodel(model, "mask")) == trunk + decoder + mask_head
    assert flops_per_example(task_submodel(model, "scene")) == trunk + scene

    counts = parameter_breakdown(model)
    trunk_params = (9 * 1 * 2 + 2) + (9 * 2 * 2 + 2) + (1 * 2 + 2)  # convs with biases (no batch norm)
    # lateral; smoothing conv (no bias) and its batch norm's scale and offset (the moving
    # mean and variance are not trainable)
    decoder_params = (2 * 3 + 3) + 9 * 3 * 3 + 2 * 3
    mask_params, scene_params = 3 * 2 + 2, (2 * 8 + 8) + (8 * 3 + 3)
    assert counts["shared_trainable"] == trunk_params
    assert counts["trainable"] == trunk_params + decoder_params + mask_params + scene_params
    assert counts["non_trainable"] == 2 * 3
    assert counts["task_trainable"] == counts["trainable"] - trunk_params


def test_dilated_convolutions_count_their_taps_not_their_span():
    x = keras.Input((8, 8, 2))
    model = keras.Model(x, ConvBlock(4, 3, dilation=3, batch_norm=False)(x))
    assert flops_per_example(model) == 8 * 8 * 4 * (3 * 3 * 2)
    depthwise = keras.Model(x, keras.layers.DepthwiseConv2D(3, dilation_rate=2, padding="same")(x))
    assert flops_per_example(depthwise) == 8 * 8 * 2 * 9


def test_serving_the_dense_task_of_a_keras_application_model_skips_the_other_heads():
    model = image_model("hps", trunk={"name": "keras_app", "application": "MobileNetV3Small"},
                        tasks=image_tasks(detection=True))
    full, mask = flops_per_example(model), flops_per_example(task_submodel(model, "mask"))
    boxes = flops_per_example(task_submodel(model, "boxes"))
    assert 0 < mask < full and 0 < boxes < full
