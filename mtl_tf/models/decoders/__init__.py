"""Registry of decoders: a feature pyramid -> one map at a dense task's output stride.

- ``unet``: from the deepest map up: upsample, concatenate the skip, two 3x3 conv blocks
  per level;
- ``fpn``: lateral 1x1, top-down nearest upsampling and sum, 3x3 smoothing; the levels
  upsampled (bilinear) to the finest one used and summed;
- ``aspp``: DeepLabV3+: atrous spatial pyramid pooling on the deepest map (1x1, 3x3 per
  rate, image pooling), upsampled and joined with a low-level skip (stride 4), two 3x3
  conv blocks.

Each ends at the task's ``output_stride`` (1: the input resolution; 4 for detection) with
bilinear upsampling when its last merged level is coarser. A decoder is a builder, not a
layer: it wires Keras layers named ``<prefix>_...`` into the functional graph, the prefix
being ``<task>_decoder`` (a task's own decoder) or ``shared_decoder`` (one for several tasks).
"""

from mtl_tf.registry import Registry

DECODERS = Registry("decoder")

from mtl_tf.models.decoders.aspp import ASPPDecoder  # noqa: E402
from mtl_tf.models.decoders.base import Decoder  # noqa: E402
from mtl_tf.models.decoders.fpn import FPNDecoder  # noqa: E402
from mtl_tf.models.decoders.unet import UNetDecoder  # noqa: E402

__all__ = ["DECODERS", "ASPPDecoder", "Decoder", "FPNDecoder", "UNetDecoder"]
