"""Custom Keras layers of the model: feature encoders, blocks, gates and routing units."""

from mtl_tf.models.layers.attention_pooling import AttentionPooling
from mtl_tf.models.layers.conv_block import ConvBlock
from mtl_tf.models.layers.cross_stitch import CrossStitch
from mtl_tf.models.layers.cross_task_attention import CrossTaskAttention
from mtl_tf.models.layers.cyclical_time import CyclicalTime
from mtl_tf.models.layers.dselect_k_gate import DSelectKGate
from mtl_tf.models.layers.expert_gate import ExpertGate
from mtl_tf.models.layers.expert_mixture import ExpertMixture
from mtl_tf.models.layers.group_linear import GroupLinear
from mtl_tf.models.layers.image_normalize import ImageNormalize
from mtl_tf.models.layers.mlp import MLP
from mtl_tf.models.layers.non_learnable_primitives import NonLearnablePrimitives
from mtl_tf.models.layers.position_embedding import PositionEmbedding
from mtl_tf.models.layers.residual_block import ResidualBlock
from mtl_tf.models.layers.sequence_steps import SequenceSteps
from mtl_tf.models.layers.soft_sharing_penalty import SoftSharingPenalty
from mtl_tf.models.layers.standardize import Standardize
from mtl_tf.models.layers.task_attention import TaskAttention
from mtl_tf.models.layers.transformer_encoder import TransformerEncoder

__all__ = ["AttentionPooling", "ConvBlock", "CrossStitch", "CrossTaskAttention", "CyclicalTime", "DSelectKGate",
           "ExpertGate", "ExpertMixture", "GroupLinear", "ImageNormalize", "MLP", "NonLearnablePrimitives",
           "PositionEmbedding", "ResidualBlock", "SequenceSteps", "SoftSharingPenalty", "Standardize",
           "TaskAttention", "TransformerEncoder"]
