import numpy as np
import tensorflow as tf

from captchalab.fastconv import logits
from captchalab.model import CONV_LAYERS, PARAMETER_COUNT, build_model, missing_layers


def test_architecture_matches_the_seed():
    model = build_model(seed=0)
    assert model.count_params() == PARAMETER_COUNT == 628_750
    sizes = [model.get_layer(n).output.shape[1:] for n in CONV_LAYERS]
    assert sizes == [(24, 24, 20), (20, 20, 20), (16, 16, 50), (12, 12, 50), (8, 8, 50), (4, 4, 50)]
    assert model.get_layer("fc1").output.shape[1:] == (500,)
    assert model.get_layer("fc2").output.shape[1:] == (10,)
    assert not any("pool" in layer.name for layer in model.layers)
    assert missing_layers(model) == []


def test_fast_training_pass_matches_keras_forward_and_gradients():
    model = build_model(seed=1)
    x = tf.constant(np.random.default_rng(0).random((8, 28, 28, 1), np.float32))
    y = tf.constant([0, 1, 2, 3, 4, 5, 6, 7])
    np.testing.assert_allclose(tf.nn.softmax(logits(model, x)).numpy(), model(x).numpy(), atol=1e-5)
    grads = []
    for forward in (lambda: tf.nn.softmax(logits(model, x)), lambda: model(x)):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, forward()))
        grads.append(tape.gradient(loss, model.trainable_variables))
    for fast, reference in zip(*grads):
        np.testing.assert_allclose(fast.numpy(), reference.numpy(), rtol=1e-3, atol=1e-5)
