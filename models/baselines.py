"""The report's baselines (its Table 4 and section IV.B): an MLP, a CNN and MobileNet.

All three output logits: the report's final softmax is dropped and training uses
`from_logits=True`, which leaves the parameter counts unchanged.
"""

import keras

from models import checks
from models.registry import register_model

ACTIVATIONS = ("relu", "tanh")
POOLS = {"max": keras.layers.MaxPooling2D, "average": keras.layers.AveragePooling2D}


@register_model
def mlp(input_shape, num_classes):
    """One-hidden-layer MLP: Flatten, Dense(256, relu), Dense(classes) (report Table 4)."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dense(256, activation="relu", name="hidden")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name="mlp")


@register_model
def cnn(input_shape, num_classes, *, activation="relu", pool="max"):
    """Small CNN: Conv2D(9, 5x5, same), 2x2 pooling, Dense(520), Dense(classes) (report Table 4).

    Args:
        input_shape: (height, width, channels); height and width at least 2.
        num_classes: number of classes in the data.
        activation: of the convolution and the hidden layer, "relu" or "tanh". The report's
            CNN had "tanh" (network_graph.ipynb, "CNN"); a bounded activation also keeps a
            run on raw 0-255 pixels finite, where "relu" diverges.
        pool: "max" or "average" (the report's) 2x2 pooling; neither has parameters.

    Raises:
        ValueError: if the input is smaller than 2x2, or `activation` or `pool` is not one
            of the accepted values.
    """
    checks.check_choice("activation", activation, ACTIVATIONS)
    checks.check_choice("pool", pool, tuple(POOLS))
    checks.check_spatial_size("cnn", input_shape, minimum=2)
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(9, 5, padding="same", activation=activation, name="conv")(inputs)
    x = POOLS[pool](2, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(520, activation=activation, name="hidden")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name="cnn")


@register_model
def mobilenet(input_shape, num_classes, *, head_classes=None, bn_momentum=0.99):
    """MobileNet v1 (alpha 1.0) from `keras.applications`, random init, logits output.

    Args:
        input_shape: (height, width, channels); height and width at least 32.
        num_classes: number of classes in the data.
        head_classes: width of the classifier head; None means `num_classes`. The
            report kept the 1000-class ImageNet head (4,253,864 params) and trained it
            with labels 0..num_classes-1, so pass 1000 to reproduce it. The model then
            outputs `head_classes` logits.
        bn_momentum: of every BatchNormalization; Keras's default, 0.99, is what the
            report used. Its moving statistics, used at test time, need several hundred
            steps to settle; a run of a few hundred steps tests better with 0.9.

    Raises:
        ValueError: if the input is smaller than 32x32, `head_classes` < `num_classes`,
            or `bn_momentum` is not in [0, 1).
    """
    head_classes = num_classes if head_classes is None else head_classes
    checks.check_int("head_classes", head_classes, num_classes)
    checks.check_fraction("bn_momentum", bn_momentum)
    checks.check_spatial_size("mobilenet", input_shape, minimum=32)
    model = keras.applications.MobileNet(
        input_shape=input_shape,
        weights=None,
        classes=head_classes,
        classifier_activation=None,
        name="mobilenet",
    )
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = bn_momentum
    return model
