"""Registry of architectures: how trunks, routing and towers are wired.

| name          | sharing                                         | trunks     |
| ------------- | ----------------------------------------------- | ---------- |
| hps           | one shared trunk, a tower per task              | mlp, conv  |
| sps           | a trunk per task, L2 penalty between them       | mlp, conv  |
| cross_stitch  | a column per task, cross-stitch after each block| mlp, conv  |
| eds           | shared encoder, a decoder per task (U-Net: conv;| mlp, conv  |
|               | GRU/Transformer over sequence features)         |            |
| mmoe          | shared experts, a softmax gate per task         | mlp, conv  |
| dselect_k     | mmoe with DSelect-k (sparse top-k) gates        | mlp, conv  |
| ple           | task and shared experts per level, CGC gates    | mlp, conv  |
| mtan          | shared trunk, task attention, cross-task fusion | mlp, conv  |
| etr_nlp       | fixed primitives shared, learnable task branches| mlp, conv  |

Image models (an image feature): every architecture gives each task a feature pyramid
(:meth:`Architecture.pyramids`) from an image trunk (conv, resnet, unet, keras_app; the
block-routing cross_stitch and etr_nlp need one that splits into blocks: conv, resnet,
unet); a dense task decodes it, an image-level task pools its deepest map (see
:meth:`Architecture.build_images`).
"""

from mtl_tf.registry import Registry

ARCHITECTURES = Registry("architecture")


def image_architectures() -> list[str]:
    """The registered architectures that build image models (they give each task a pyramid)."""
    return [name for name in ARCHITECTURES.names()
            if ARCHITECTURES.lookup(name).pyramids is not Architecture.pyramids]


from mtl_tf.models.architectures.base import Architecture  # noqa: E402
from mtl_tf.models.architectures.cross_stitch import CrossStitchNetwork  # noqa: E402
from mtl_tf.models.architectures.dselect_k import DSelectK  # noqa: E402
from mtl_tf.models.architectures.eds import EncoderDecoder  # noqa: E402
from mtl_tf.models.architectures.etr_nlp import ExplicitTaskRouting  # noqa: E402
from mtl_tf.models.architectures.hps import HardParameterSharing  # noqa: E402
from mtl_tf.models.architectures.mmoe import MultiGateMixtureOfExperts  # noqa: E402
from mtl_tf.models.architectures.mtan import MultiTaskAttention  # noqa: E402
from mtl_tf.models.architectures.ple import ProgressiveLayeredExtraction  # noqa: E402
from mtl_tf.models.architectures.sps import SoftParameterSharing  # noqa: E402

__all__ = ["ARCHITECTURES", "Architecture", "image_architectures", "CrossStitchNetwork", "DSelectK", "EncoderDecoder",
           "ExplicitTaskRouting", "HardParameterSharing", "MultiGateMixtureOfExperts",
           "MultiTaskAttention", "ProgressiveLayeredExtraction", "SoftParameterSharing"]
