"""Registry of trunks: the shared part of a multi-task model.

Besides being a Keras layer, a trunk tells architectures how it splits into blocks, so
that cross-stitch, PLE, MTAN and ETR-NLP can route between tasks after each block:

- ``widths``: output width (units or channels) of each block;
- ``strides``: spatial downsampling of each block (1 for Dense blocks);
- ``spatial``: True for image trunks, whose blocks take (batch, H, W, C);
- ``pooled``: whether the trunk ends with global pooling;
- ``block(index, name)``: a fresh trunk made of one block;
- ``split(prefix)``: fresh one-block trunks named ``"<prefix>_<i>"``.
"""

from mtl_tf.registry import Registry

TRUNKS = Registry("trunk")

from mtl_tf.models.trunks.conv import ConvTrunk  # noqa: E402
from mtl_tf.models.trunks.mlp import MLPTrunk  # noqa: E402

__all__ = ["TRUNKS", "ConvTrunk", "MLPTrunk"]
