"""Parameter counts of a built model.

Keras counts the total itself (`model.count_params()`, BatchNormalization's moving
statistics included, as the report's Table 4 did); the trainable count is written here once.
"""

import math


def count_trainable(model):
    """Returns the number of trainable parameters of `model`, an int."""
    return sum(math.prod(w.shape) for w in model.trainable_weights)
