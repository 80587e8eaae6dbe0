"""Registry of trunks: the shared part of a multi-task model.

| name        | input            | stages (pyramid strides)                            |
| ----------- | ---------------- | --------------------------------------------------- |
| mlp         | tabular features | Dense blocks                                        |
| conv        | images           | [stem], residual stages (1, 2, 4, ... by default)   |
| resnet      | images           | stride-2 stem and stages: 2, 4, 8, 16, 32           |
| unet        | images           | U-Net encoder levels: 1, 2, 4, 8                    |
| keras_app   | images           | a Keras Applications backbone: 4, 8, 16, 32         |

Besides being a Keras layer, a trunk tells architectures how it splits into blocks, so
that cross-stitch, PLE, MTAN and ETR-NLP can route between tasks after each block
(mlp, conv, resnet, unet):

- ``widths``: output width (units or channels) of each block;
- ``strides``: spatial downsampling of each block (1 for Dense blocks);
- ``spatial``: True for image trunks, whose blocks take (batch, H, W, C);
- ``pooled``: whether the trunk ends with global pooling;
- ``block(index, name)``: a fresh trunk made of one block;
- ``split(prefix)``: fresh one-block trunks named ``"<prefix>_<i>"``.

Image trunks (``spatial``) also give a feature pyramid: ``trunk.pyramid(x)`` calls the
trunk in the functional graph and returns a :class:`mtl_tf.models.pyramid.Pyramid` of its
stages' maps with their strides (``pyramid_strides``), finest first.
"""

from mtl_tf.registry import Registry

TRUNKS = Registry("trunk")

from mtl_tf.models.trunks.conv import ConvTrunk  # noqa: E402
from mtl_tf.models.trunks.keras_app import KerasApplicationTrunk  # noqa: E402
from mtl_tf.models.trunks.mlp import MLPTrunk  # noqa: E402
from mtl_tf.models.trunks.resnet import ResNetTrunk  # noqa: E402
from mtl_tf.models.trunks.unet import UNetTrunk  # noqa: E402

__all__ = ["TRUNKS", "ConvTrunk", "KerasApplicationTrunk", "MLPTrunk", "ResNetTrunk", "UNetTrunk"]
