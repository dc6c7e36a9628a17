"""A training forward pass over the network's own weights with a faster convolution gradient.

On CPU, TensorFlow's Conv2DBackpropFilter for these small 5x5 layers runs at about half the
speed of the forward convolution (benchmarks/train_speed.py). The filter gradient
dW[i, j, c, o] = sum_{b, y, x} X[b, y+i, x+j, c] * G[b, y, x, o] is itself a forward
convolution once batch and channels swap places, so we compute it that way. The first layer
needs no input gradient at all. Weights stay ordinary Keras variables: the saved model is the
plain network.
"""
from __future__ import annotations

import tensorflow as tf


def _filter_grad(x, g):
    return tf.transpose(tf.nn.conv2d(tf.transpose(x, [3, 1, 2, 0]), tf.transpose(g, [1, 2, 0, 3]),
                                     1, "VALID"), [1, 2, 0, 3])


@tf.custom_gradient
def conv_valid(x, kernel):
    def grad(g):
        gx = tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=kernel, out_backprop=g,
                                            strides=[1, 1, 1, 1], padding="VALID")
        return gx, _filter_grad(x, g)
    return tf.nn.conv2d(x, kernel, 1, "VALID"), grad


@tf.custom_gradient
def conv_valid_input_layer(x, kernel):
    """As conv_valid, for the first layer: nothing upstream needs the input gradient."""
    def grad(g):
        return tf.zeros_like(x), _filter_grad(x, g)
    return tf.nn.conv2d(x, kernel, 1, "VALID"), grad


def logits(model, x):
    """The network's pre-softmax output, computed from its layers' variables."""
    from .model import CONV_LAYERS
    for i, name in enumerate(CONV_LAYERS):
        layer = model.get_layer(name)
        conv = conv_valid_input_layer if i == 0 else conv_valid
        # read the variable outside the custom-gradient function, which must see tensors only
        x = tf.nn.relu(tf.nn.bias_add(conv(x, tf.convert_to_tensor(layer.kernel)), layer.bias))
    x = tf.reshape(x, [-1, 800])
    fc1, fc2 = model.get_layer("fc1"), model.get_layer("fc2")
    x = tf.nn.relu(tf.matmul(x, fc1.kernel) + fc1.bias)
    return tf.matmul(x, fc2.kernel) + fc2.bias
