"""fishbench models: a registry of Keras image classifiers that output logits.

    import models
    models.names()                      # ['cnn', 'fishnet55', ..., 'mobilenet']
    models.options("fishnet77")         # {'stem': 'concise', 'head': 'dense', ...}
    models.family("fishnet77")          # 'fishnet' ('baselines' for mlp, cnn, mobilenet)
    model = models.build("fishnet77", (56, 56, 3), 10, head="conv")
    models.flops(model)                 # forward FLOPs per image
    models.count_trainable(model)       # trainable parameters (model.count_params() is the total)

Importing this package registers every model (baselines and FishNets). Architectures only:
how the harness computes them faster lives in ``bench.speedups``.
"""

from models import baselines, fishnet  # noqa: F401  (registers the models)
from models.flops import flops
from models.params import count_trainable
from models.registry import (
    build,
    describe,
    family,
    from_logits,
    module,
    names,
    options,
    register_model,
)

__all__ = [
    "build", "count_trainable", "describe", "family", "flops", "from_logits", "module", "names", "options",
    "register_model",
]
