"""Tests of mtl_tf.models."""
