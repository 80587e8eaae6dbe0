"""Tests of mtl_tf.data."""
