"""fishbench models: a registry of Keras image classifiers that output logits.

    import models
    models.names()                      # ['cnn', 'fishnet55', ..., 'mobilenet']
    models.options("fishnet77")         # {'stem': 'concise', 'head': 'dense', ...}
    models.family("fishnet77")          # 'fishnet' ('baselines' for mlp, cnn, mobilenet)
    model = models.build("fishnet77", (56, 56, 3), 10, head="conv")
    models.flops(model)                 # forward FLOPs per image
    models.count_trainable(model)       # trainable parameters (model.count_params() is the total)
    models.fuse_batch_norm(model)       # the training harness's faster batch norm, same weights

Importing this package registers every model (baselines and FishNets).
"""

from models import baselines, fishnet  # noqa: F401  (registers the models)
from models.flops import flops
from models.fused import FusedBatchNormalization, fuse_batch_norm
from models.params import count_trainable
from models.registry import build, describe, family, names, natural_key, options, register_model

__all__ = [
    "FusedBatchNormalization", "build", "count_trainable", "describe", "family", "flops", "fuse_batch_norm",
    "names", "natural_key", "options", "register_model",
]
