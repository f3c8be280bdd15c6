"""FishNet in the Keras functional API.

FishNet: Sun, Pang, Shi, Yi and Ouyang, "FishNet: A Versatile Backbone for Image,
Region and Pixel Level Prediction", NeurIPS 2018 (code: kevin-ssy/FishNet).

The architecture follows docs/fishnet.md (the "spec"): §1-4 for the official design
(fishnet99, fishnet150, fishnet201) and §5 for the report's smaller FishNet55 and
FishNet77 (Cao, Shang and Zang, Columbia E4040, 2021). Every variant takes the options
where the two designs differ; the defaults are the report's choices for fishnet55/77
and the official ones for fishnet99/150/201.

- stem: "official" (3x3 stride-2 conv, two 3x3 convs, 3x3 stride-2 max-pool; the
  input is reduced 4x) or "concise" (the two 3x3 convs only; spec §5.1).
- bridge: the score block of the bridge, "official" (halves the width, ReLU after the
  second BN) or "report" (keeps the width, no second ReLU; spec §5.2).
- head: the classifier (``HEADS``, spec §2 "Final classifier", §5.3). "conv" is the
  official score block (ReLU after the second BN, global average pooling, then a 1x1
  conv, built as the equivalent Dense); "dense" the report's (no second ReLU, Flatten,
  Dense). Both end in logits; the report's dense head ended in a softmax read by a loss
  on probabilities, which computes the same function. "report_conv" is the conv head of
  the report's Fig. 3 and 4 as its code had it (spec §5.3): no second ReLU, pooling, a
  1x1 conv, no softmax, yet a loss on probabilities; "report_conv_softmax" is the same
  with its softmax restored. The model says which loss its output is for
  (``models.from_logits``).
- bn_momentum, bn_epsilon: of every BatchNormalization. PyTorch's defaults, used by
  the official code, are 0.9 / 1e-5 in Keras terms; Keras's own are 0.99 / 1e-3.

Layer names follow stage and block. With L = num_down levels there are 3L + 1
stages, numbered from 0: tail0 .. tail{L-1}, bridge{L}, then L body and L head
stages (tail0-2, bridge3, body4-6, head7-9 for L = 3). Stage i ends in a layer named
f"{stage}{i}_out", its bottlenecks are f"{stage}{i}_block{b}_*" (b from 1) and its
transfer branch is f"{stage}{i}_trans_block{b}_*". The classifier is "score_*".
Weights use the Keras default initialisers (Glorot), not the official He-normal.
"""

import inspect
from dataclasses import dataclass

import keras
from keras import layers, ops

from models import checks
from models.registry import register_model

STEMS = ("official", "concise")
BRIDGES = ("official", "report")


@dataclass(frozen=True)
class Head:
    """How a classifier ends: the score block's second ReLU, pooling or flattening, a
    softmax, and whether the loss takes the output as logits (else as probabilities)."""

    relu_out: bool
    pool: bool
    softmax: bool
    from_logits: bool


HEADS = {
    "conv": Head(relu_out=True, pool=True, softmax=False, from_logits=True),  # official (spec §2)
    "dense": Head(relu_out=False, pool=False, softmax=False, from_logits=True),  # the report's (spec §5.3)
    # The report's conv head (spec §5.3): raw 1x1-conv outputs that its loss read as probabilities.
    "report_conv": Head(relu_out=False, pool=True, softmax=False, from_logits=False),
    "report_conv_softmax": Head(relu_out=False, pool=True, softmax=True, from_logits=False),  # softmax restored
}

# ---------------------------------------------------------------------------- blocks


@keras.saving.register_keras_serializable(package="fishbench")
class ChannelSqueeze(keras.layers.Layer):
    """Sums each group of `k` consecutive channels: (..., k * C) -> (..., C).

    The parameter-free shortcut of the up-sampling bottleneck (spec §2): output
    channel c is the sum of input channels c*k .. c*k + k - 1, as in the PyTorch code.
    """

    def __init__(self, k, **kwargs):
        super().__init__(**kwargs)
        self.k = k

    def call(self, x):
        leading = ops.shape(x)[:-1]
        groups = ops.reshape(x, (*leading, x.shape[-1] // self.k, self.k))
        return ops.sum(groups, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // self.k)

    def get_config(self):
        return {**super().get_config(), "k": self.k}


def bn_relu_conv(x, filters, kernel_size, bn, name, suffix="", dilation=1):
    """BN, ReLU, then a bias-free conv with 'same' padding: the pre-activation unit."""
    x = layers.BatchNormalization(**bn, name=f"{name}_bn{suffix}")(x)
    x = layers.ReLU(name=f"{name}_relu{suffix}")(x)
    return layers.Conv2D(
        filters,
        kernel_size,
        padding="same",
        dilation_rate=dilation,
        use_bias=False,
        name=f"{name}_conv{suffix}",
    )(x)


def bottleneck(x, filters, bn, name, *, up=False, dilation=1):
    """Pre-activation bottleneck to `filters` channels, `filters // 4` inside (spec §2).

    The shortcut is identity when the width is kept. Otherwise it is the channel
    squeeze when `up` is set and a BN-ReLU-conv1x1 projection when not. Nothing
    follows the addition.
    """
    residual = bn_relu_conv(x, filters // 4, 1, bn, name, "1")
    residual = bn_relu_conv(residual, filters // 4, 3, bn, name, "2", dilation)
    residual = bn_relu_conv(residual, filters, 1, bn, name, "3")
    if x.shape[-1] == filters:
        shortcut = x
    elif up:
        shortcut = ChannelSqueeze(x.shape[-1] // filters, name=f"{name}_squeeze")(x)
    else:
        shortcut = bn_relu_conv(x, filters, 1, bn, f"{name}_proj")
    return layers.Add(name=f"{name}_add")([residual, shortcut])


def residual_stack(x, filters, num_blocks, bn, name, *, up=False, dilation=1):
    """`num_blocks` bottlenecks; only the first changes the width (spec §2)."""
    for b in range(1, num_blocks + 1):
        x = bottleneck(x, filters, bn, f"{name}_block{b}", up=up and b == 1, dilation=dilation)
    return x


def score_block(x, filters, bn, name, *, relu_out):
    """BN, ReLU, bias-free conv1x1 to `filters`, BN, and a ReLU if `relu_out`."""
    x = bn_relu_conv(x, filters, 1, bn, name, "1")
    x = layers.BatchNormalization(**bn, name=f"{name}_bn2")(x)
    return layers.ReLU(name=f"{name}_relu2")(x) if relu_out else x


def se_block(x, filters, bn, name):
    """Channel attention of the bridge, shape (1, 1, filters) in (0, 1) (spec §2)."""
    x = layers.BatchNormalization(**bn, name=f"{name}_bn")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    x = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    x = layers.Conv2D(filters // 16, 1, activation="relu", name=f"{name}_conv1")(x)
    return layers.Conv2D(filters, 1, activation="sigmoid", name=f"{name}_conv2")(x)


# ---------------------------------------------------------------------------- stages


def stem_stage(x, width, stem, bn):
    """Official stem, output 1/4 of the input size (spec §2), or concise, 1/1 (spec §5.1)."""
    if stem == "official":
        units = [(width // 2, 2), (width // 2, 1), (width, 1)]  # (filters, strides)
    else:
        units = [(width // 2, 1), (width, 1)]
    for i, (filters, strides) in enumerate(units, 1):
        if strides > 1:  # PyTorch's padding 1, which 'same' would put on one side only.
            x = layers.ZeroPadding2D(1, name=f"stem_pad{i}")(x)
        x = layers.Conv2D(
            filters,
            3,
            strides=strides,
            padding="valid" if strides > 1 else "same",
            use_bias=False,
            name=f"stem_conv{i}",
        )(x)
        x = layers.BatchNormalization(**bn, name=f"stem_bn{i}")(x)
        x = layers.ReLU(name=f"stem_relu{i}")(x)
    if stem == "official":  # Zero padding acts as PyTorch's -inf padding: x >= 0 after ReLU.
        x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    return x


def tail_stage(x, width, num_blocks, bn, name):
    """Residual stack, then 2x2 max-pool."""
    x = residual_stack(x, width, num_blocks, bn, name)
    return layers.MaxPooling2D(2, name=f"{name}_out")(x)


def bridge_stage(x, width, num_blocks, bridge, bn, name):
    """The "SE" stage between tail and body: returns r * a + a (spec §2, §5.2).

    s = score block of x to 2 * width channels, a = SE attention of s and
    r = residual stack of s to `width`.
    """
    official = bridge == "official"
    channels = x.shape[-1] // 2 if official else x.shape[-1]
    s = score_block(x, channels, bn, f"{name}_score", relu_out=official)
    s = layers.Conv2D(2 * width, 1, name=f"{name}_score_conv2")(s)
    a = se_block(s, width, bn, f"{name}_se")
    r = residual_stack(s, width, num_blocks, bn, name)
    return layers.Add(name=f"{name}_out")([layers.Multiply(name=f"{name}_attend")([r, a]), a])


def body_stage(x, feat, width, num_blocks, num_trans, dilation, bn, name):
    """Up-sampling stage: squeeze-shortcut stack, 2x nearest up-sampling, transfer."""
    trunk = residual_stack(x, width, num_blocks, bn, name, up=True, dilation=dilation)
    trunk = layers.UpSampling2D(2, name=f"{name}_up")(trunk)
    return concat_transfer(trunk, feat, num_trans, bn, name)


def head_stage(x, feat, width, num_blocks, num_trans, bn, name):
    """Down-sampling stage: residual stack, 2x2 max-pool, transfer."""
    trunk = residual_stack(x, width, num_blocks, bn, name)
    trunk = layers.MaxPooling2D(2, name=f"{name}_down")(trunk)
    return concat_transfer(trunk, feat, num_trans, bn, name)


def concat_transfer(trunk, feat, num_trans, bn, name):
    """Concatenates `trunk` and the transfer branch of `feat` (identity bottlenecks)."""
    branch = residual_stack(feat, feat.shape[-1], num_trans, bn, f"{name}_trans")
    return layers.Concatenate(name=f"{name}_out")([trunk, branch])


def classifier(x, num_classes, head, bn):
    """Final score block to `num_classes` outputs of head `head` (spec §2 "Final classifier", §5.3)."""
    x = score_block(x, x.shape[-1] // 2, bn, "score", relu_out=head.relu_out)
    if head.pool:
        x = layers.GlobalAveragePooling2D(name="score_pool")(x)
    else:
        x = layers.Flatten(name="score_flatten")(x)
    x = layers.Dense(num_classes, name="score_fc")(x)
    return layers.Softmax(name="score_softmax")(x) if head.softmax else x


# ---------------------------------------------------------------------------- network


def fishnet(name, input_shape, num_classes, *, stem, head, bridge, bn_momentum, bn_epsilon):
    """Builds the FishNet of row `name` of `CONFIGS`.

    Args:
        name: a key of `CONFIGS`; also the model's name.
        input_shape: (height, width, channels). Height and width must be multiples of
            2 ** num_down, times 4 with the official stem.
        num_classes: number of logits.
        stem, head, bridge, bn_momentum, bn_epsilon: see the module docstring.

    Returns:
        An uncompiled `keras.Model`; it outputs logits unless its head says otherwise
        (``model.from_logits``).

    Raises:
        ValueError: for an invalid config row, option value or input size; raised
            before any layer is created.
    """
    cfg = CONFIGS[name]
    check_config(name, cfg)
    checks.check_choice("stem", stem, STEMS)
    checks.check_choice("head", head, HEADS)
    checks.check_choice("bridge", bridge, BRIDGES)
    checks.check_fraction("bn_momentum", bn_momentum)
    checks.check_positive("bn_epsilon", bn_epsilon)
    levels = cfg["num_down"]
    multiple = 2**levels * (4 if stem == "official" else 1)
    checks.check_spatial_size(name, input_shape, multiple=multiple, condition=f"with stem={stem!r}")

    bn = {"momentum": bn_momentum, "epsilon": bn_epsilon}
    planes, blocks = cfg["network_planes"], cfg["num_res_blks"]
    inputs = keras.Input(input_shape)
    feats = [stem_stage(inputs, planes[0], stem, bn)]
    for i in range(levels):
        feats.append(tail_stage(feats[-1], planes[i + 1], blocks[i], bn, f"tail{i}"))
    feats.append(
        bridge_stage(feats[-1], planes[levels + 1], blocks[levels], bridge, bn, f"bridge{levels}")
    )
    for j, (source, num_trans) in enumerate(zip(cfg["trans_map"], cfg["num_trans_blks"])):
        i = levels + 1 + j
        args = (feats[-1], feats[source], planes[i + 1], blocks[i], num_trans)
        if j < levels:
            feats.append(body_stage(*args, 2**j, bn, f"body{i}"))
        else:
            feats.append(head_stage(*args, bn, f"head{i}"))
    model = keras.Model(inputs, classifier(feats[-1], num_classes, HEADS[head], bn), name=name)
    model.from_logits = HEADS[head].from_logits
    return model


def check_config(name, cfg):
    """Checks one `CONFIGS` row: list lengths, values, and that transfers line up.

    Raises:
        ValueError: naming the row, the field and its value.
    """
    levels = cfg["num_down"]
    if not checks.is_int(levels) or levels < 1:
        _config_error(name, "num_down must be an integer >= 1", "num_down", levels)
    lengths = {
        "network_planes": 3 * levels + 2,
        "num_res_blks": 3 * levels + 1,
        "num_trans_blks": 2 * levels,
        "trans_map": 2 * levels,
    }
    for field, length in lengths.items():
        if len(cfg[field]) != length:
            problem = f"{field} needs {length} entries for num_down={levels}"
            _config_error(name, problem, field, cfg[field])
    for field, minimum in (("network_planes", 1), ("num_res_blks", 1), ("num_trans_blks", 0)):
        if not all(checks.is_int(v) and v >= minimum for v in cfg[field]):
            _config_error(name, f"{field} must hold integers >= {minimum}", field, cfg[field])
    planes = cfg["network_planes"]
    if planes[levels + 1] < 16:
        problem = "the bridge needs a width of at least 16 for its SE block"
        _config_error(name, problem, "network_planes", planes)
    # (level, channels) of feats[0] = stem output and feats[s + 1] = output of stage s;
    # level l means 1/2**l of the stem output size.
    feats = [(0, planes[0])]
    feats += [(s + 1, planes[s + 1]) for s in range(levels)]
    feats += [(levels, planes[levels + 1])]
    for j, source in enumerate(cfg["trans_map"]):
        level = levels - 1 - j if j < levels else j - levels + 1
        accepted = [s for s, (lvl, _) in enumerate(feats) if lvl == level]
        if source not in accepted:
            problem = f"trans_map[{j}] must be one of {accepted} (the maps at its resolution)"
            _config_error(name, problem, "trans_map", cfg["trans_map"])
        width = planes[levels + 2 + j]
        if j < levels and feats[-1][1] % width:
            problem = f"body stage {levels + 1 + j} needs an input width divisible by {width}"
            _config_error(name, problem, "network_planes", planes)
        feats.append((level, width + feats[source][1]))


def _config_error(name, problem, field, value):
    raise ValueError(f"FishNet config {name!r}: {problem}. Received: {field}={value!r}")


# ---------------------------------------------------------------------------- configs

# The report's FishNets with the official score blocks (bridge and head), spec §5.
OFFICIAL_SCORE_BLOCKS = {"head": "conv", "bridge": "official"}

# One row per variant, in the official code's terms (spec §1): network_planes holds the
# stem width, then the trunk width of each stage (num_down tail, the bridge, num_down
# body, num_down head); num_res_blks the trunk bottlenecks per stage; num_trans_blks and
# trans_map, per body and head stage, the transfer bottlenecks and the index of the
# transferred map in feats (feats[0] = stem output, feats[s + 1] = output of stage s).
# params holds the parameter counts the tests expect, one tuple per case: (input_shape,
# num_classes, options apart from the defaults, Keras count_params(), trainable or None
# where the source gives only the total).
OFFICIAL_99_150_201 = dict(num_down=3, network_planes=(64, 128, 256, 512, 512, 512, 384, 256, 320, 832, 1600),
                           trans_map=(2, 1, 0, 6, 5, 4))
CONFIGS = {
    # The report's FishNet55 (spec §5, their model/applications.py), 1/8 widths, 2 levels.
    "fishnet55": dict(
        num_down=2,
        network_planes=(8, 16, 32, 32, 32, 24, 32, 48),
        num_res_blks=(2, 3, 2, 1, 1, 1, 2),
        num_trans_blks=(1, 1, 1, 4),
        trans_map=(1, 0, 4, 3),
        params=(  # spec §5, "Reproduction of the reported counts"
            ((56, 56, 3), 10, {}, 118_752, 116_040),  # the report's Table 4
            ((56, 56, 1), 10, {}, 118_680, None),  # a 1-channel input
            ((56, 56, 3), 10, OFFICIAL_SCORE_BLOCKS, 39_152, 36_472),
        ),
    ),
    # The report's FishNet77 (spec §5), 1/4 of FishNet99's widths.
    "fishnet77": dict(
        num_down=3,
        network_planes=(16, 32, 64, 128, 128, 128, 96, 64, 80, 208, 400),
        num_res_blks=(2, 2, 6, 2, 1, 1, 1, 1, 2, 2),
        num_trans_blks=(1, 1, 1, 1, 1, 4),
        trans_map=(2, 1, 0, 6, 5, 4),
        params=(  # spec §5, "Reproduction of the reported counts"
            ((56, 56, 3), 100, {}, 2_317_636, None),  # the report's Table 4 (labelled 10 classes)
            ((56, 56, 3), 10, {}, 1_153_306, 1_138_330),
            ((56, 56, 1), 100, {}, 2_317_492, None),  # a 1-channel input
            ((56, 56, 3), 10, OFFICIAL_SCORE_BLOCKS, 1_001_754, 986_906),
        ),
    ),
    # Official (spec §3-4, kevin-ssy/FishNet cfgs; trainable counts: spec §4); they differ
    # only in their blocks per stage.
    "fishnet99": dict(OFFICIAL_99_150_201, num_res_blks=(2, 2, 6, 2, 1, 1, 1, 1, 2, 2), num_trans_blks=(1, 1, 1, 1, 1, 4),
                      params=(((224, 224, 3), 1000, {}, 16_688_360, 16_628_904),)),
    "fishnet150": dict(OFFICIAL_99_150_201, num_res_blks=(2, 4, 8, 4, 2, 2, 2, 2, 2, 4), num_trans_blks=(2, 2, 2, 2, 2, 4),
                       params=(((224, 224, 3), 1000, {}, 25_045_736, 24_959_400),)),
    "fishnet201": dict(OFFICIAL_99_150_201, num_res_blks=(3, 4, 12, 4, 2, 2, 2, 2, 3, 10), num_trans_blks=(2, 2, 2, 2, 2, 9),
                       params=(((224, 224, 3), 1000, {}, 44_716_392, 44_584_552),)),
}

# ---------------------------------------------------------------------------- registered

# The options of a variant and their defaults: the report's choices, or the official ones.
REPORT_OPTIONS = {"stem": "concise", "head": "dense", "bridge": "report", "bn_momentum": 0.99, "bn_epsilon": 1e-3}
OFFICIAL_OPTIONS = {"stem": "official", "head": "conv", "bridge": "official", "bn_momentum": 0.9, "bn_epsilon": 1e-5}


def variant(name, doc, defaults):
    """Registers the builder of row `name` of `CONFIGS` under that name.

    Its signature is `(input_shape, num_classes, *, <defaults>)`: the registry reads a
    model's options from the signature, so it is written from `defaults` here rather than
    by hand five times.
    """
    def build(input_shape, num_classes, **options):
        return fishnet(name, input_shape, num_classes, **{**defaults, **options})

    positional = [inspect.Parameter(arg, inspect.Parameter.POSITIONAL_OR_KEYWORD) for arg in ("input_shape", "num_classes")]
    keywords = [inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=value) for key, value in defaults.items()]
    build.__signature__ = inspect.Signature(positional + keywords)
    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc
    return register_model(build)


fishnet55 = variant("fishnet55", "FishNet55 of the report: 2 levels, 1/8 of FishNet99's widths (docs/fishnet.md §5).",
                    REPORT_OPTIONS)
fishnet77 = variant("fishnet77", "FishNet77 of the report: 3 levels, 1/4 of FishNet99's widths (docs/fishnet.md §5).",
                    REPORT_OPTIONS)
fishnet99 = variant("fishnet99", "FishNet99, the official design (docs/fishnet.md §2-4).", OFFICIAL_OPTIONS)
fishnet150 = variant("fishnet150", "FishNet150, the official design (docs/fishnet.md §2-4).", OFFICIAL_OPTIONS)
fishnet201 = variant("fishnet201", "FishNet201, the official design (docs/fishnet.md §2-4).", OFFICIAL_OPTIONS)
