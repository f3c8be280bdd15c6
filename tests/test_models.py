"""Tests of the `models` package: registry, parameter counts, stage shapes, FLOPs, training.

The FishNets' expected parameter counts are data in their rows of `fishnet.CONFIGS` (from
the report and docs/fishnet.md, the FishNet spec); the baselines' are below. The 224x224
FishNets are only built and counted here, never trained.
"""

import functools
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import models
from models import fishnet
from models.fishnet import ChannelSqueeze

ALL_MODELS = [
    "cnn", "fishnet55", "fishnet77", "fishnet99", "fishnet150", "fishnet201", "mlp", "mobilenet",
]


@functools.lru_cache(maxsize=None)
def _cached_build(name, input_shape, num_classes, option_items):
    return models.build(name, input_shape, num_classes, **dict(option_items))


def built(name, input_shape, num_classes, **options):
    """Builds once per argument set; for tests that only read the model."""
    return _cached_build(name, input_shape, num_classes, tuple(sorted(options.items())))


def all_finite(tensors):
    return all(bool(keras.ops.all(keras.ops.isfinite(t))) for t in tensors)


def case_id(value):
    """Readable test ids: fishnet99-224x224x3-{'stem': 'concise'}."""
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return str(value) if value != {} else "defaults"


# ---------------------------------------------------------------------------- registry


def test_names_lists_every_model_in_natural_order():
    assert models.names() == ALL_MODELS


def test_the_registry_lists_names_in_natural_order():
    assert models.names() == ["cnn", "fishnet55", "fishnet77", "fishnet99", "fishnet150", "fishnet201", "mlp",
                               "mobilenet"]


def test_each_model_belongs_to_the_family_of_its_module():
    families = {name: models.family(name) for name in ALL_MODELS}
    assert families == {name: "fishnet" if name in fishnet.CONFIGS else "baselines" for name in ALL_MODELS}
    with pytest.raises(ValueError, match=r"registered models are \['cnn', .*Received: name='resnet50'"):
        models.family("resnet50")


def test_options_are_resolved_per_model():
    report = dict(stem="concise", head="dense", bridge="report", bn_momentum=0.99, bn_epsilon=1e-3)
    official = dict(stem="official", head="conv", bridge="official", bn_momentum=0.9,
                    bn_epsilon=1e-5)
    assert models.options("fishnet55") == models.options("fishnet77") == report
    for name in ("fishnet99", "fishnet150", "fishnet201"):
        assert models.options(name) == official
    assert models.options("mobilenet") == {"head_classes": None, "bn_momentum": 0.99}
    assert models.options("cnn") == {"activation": "relu", "pool": "max"}
    assert models.options("mlp") == {}


@pytest.mark.parametrize("name", ALL_MODELS)
def test_describe_gives_one_line(name):
    text = models.describe(name)
    assert text and "\n" not in text


def test_registering_a_name_twice_raises():
    def mlp(input_shape, num_classes):
        """A second mlp."""

    with pytest.raises(ValueError, match="is already registered.*Received: name='mlp'"):
        models.register_model(mlp)
    assert models.describe("mlp") != "A second mlp."


def test_registering_a_bad_signature_raises():
    def no_defaults(input_shape, num_classes, *, depth):
        """Options need defaults."""

    with pytest.raises(TypeError, match="Received: no_defaults"):
        models.register_model(no_defaults)
    assert "no_defaults" not in models.names()


def test_none_option_means_default():
    assert (
        models.build("fishnet55", (56, 56, 3), 10, stem=None, head=None).count_params()
        == built("fishnet55", (56, 56, 3), 10).count_params()
    )


# ---------------------------------------------------------------------------- bad input

BAD_INPUTS = [
    # (name, input_shape, num_classes, options, text the message must contain)
    ("resnet50", (56, 56, 3), 10, {}, "['cnn', 'fishnet55'"),
    ("mlp", (56, 56, 3), 1, {}, "Received: num_classes=1"),
    ("mlp", (56, 56, 3), 10.0, {}, "Received: num_classes=10.0"),
    ("mlp", (56, 56), 10, {}, "Received: input_shape=(56, 56)"),
    ("cnn", (56, 0, 3), 10, {}, "Received: input_shape=(56, 0, 3)"),
    ("cnn", (56, 56, 3), 10, {"activation": "sigmoid"}, "one of 'relu', 'tanh'. Received: activation='sigmoid'"),
    ("cnn", (56, 56, 3), 10, {"pool": "avg"}, "one of 'max', 'average'. Received: pool='avg'"),
    ("fishnet55", (56, 56, 3), 10, {"depth": 3},
     "accepts ['bn_epsilon', 'bn_momentum', 'bridge', 'head', 'stem']. Received: depth=3"),
    ("mlp", (56, 56, 3), 10, {"stem": "concise"}, "accepts no options. Received: stem='concise'"),
    ("fishnet77", (30, 30, 3), 10, {}, "`fishnet77` with stem='concise' needs an input height and "
     "width that are multiples of 8 (e.g. 8, 16, 24). Received: input_shape=(30, 30, 3)"),
    ("fishnet55", (56, 58, 3), 10, {}, "multiples of 4"),
    ("fishnet55", (56, 56, 3), 10, {"stem": "official"}, "multiples of 16"),
    ("fishnet99", (56, 56, 3), 10, {}, "with stem='official' needs an input height and width "
     "that are multiples of 32"),
    ("fishnet77", (56, 56, 3), 10, {"stem": "foo"}, "'official', 'concise'. Received: stem='foo'"),
    ("fishnet77", (56, 56, 3), 10, {"head": "gap"}, "Received: head='gap'"),
    ("fishnet99", (224, 224, 3), 10, {"bridge": "se"}, "Received: bridge='se'"),
    ("fishnet55", (56, 56, 3), 10, {"bn_momentum": 1.5}, "Received: bn_momentum=1.5"),
    ("fishnet55", (56, 56, 3), 10, {"bn_epsilon": 0}, "Received: bn_epsilon=0"),
    ("mobilenet", (28, 28, 3), 10, {}, "at least 32"),
    ("mobilenet", (56, 56, 3), 10, {"head_classes": 5}, "integer >= 10. Received: head_classes=5"),
    ("mobilenet", (56, 56, 3), 10, {"bn_momentum": 1}, "Received: bn_momentum=1"),
]


@pytest.mark.parametrize("name, input_shape, num_classes, options, text", BAD_INPUTS, ids=case_id)
def test_bad_input_raises_before_any_layer_exists(
    monkeypatch, name, input_shape, num_classes, options, text
):
    def no_layers(*args, **kwargs):
        raise AssertionError("a layer was created before the arguments were checked")

    monkeypatch.setattr(keras.layers.Layer, "__init__", no_layers)
    with pytest.raises(ValueError) as info:
        models.build(name, input_shape, num_classes, **options)
    message = str(info.value)
    assert text in message
    assert "\n" not in message
    assert re.search(r"Received: \w+=\S", message)


@pytest.mark.parametrize(
    "field, value, text",
    [
        ("num_res_blks", (2, 3, 2, 1, 1, 1), "num_res_blks needs 7 entries"),
        ("num_trans_blks", (1, 1, -1, 4), "num_trans_blks must hold integers >= 0"),
        ("trans_map", (1, 0, 3, 3), "trans_map[2] must be one of [1, 4]"),
        ("network_planes", (8, 16, 32, 32, 32, 20, 32, 48), "body stage 4 needs an input width"),
    ],
    ids=["lengths", "negative", "resolution", "squeeze"],
)
def test_bad_config_row_raises(monkeypatch, field, value, text):
    row = {**fishnet.CONFIGS["fishnet55"], field: value}
    monkeypatch.setitem(fishnet.CONFIGS, "fishnet55", row)
    with pytest.raises(ValueError, match=re.escape(text)):
        models.build("fishnet55", (56, 56, 3), 10)


# ---------------------------------------------------------------------------- parameter counts

PARAM_COUNTS = [
    # (name, input_shape, num_classes, options, Keras count_params(), trainable or None)
    ("mlp", (56, 56, 3), 10, {}, 2_411_274, None),
    ("cnn", (56, 56, 3), 10, {}, 3_675_534, None),
    ("cnn", (56, 56, 3), 10, {"activation": "tanh", "pool": "average"}, 3_675_534, None),  # the report's
    ("mobilenet", (56, 56, 3), 10, {"head_classes": 1000}, 4_253_864, None),
    ("mobilenet", (56, 56, 3), 10, {}, 3_239_114, None),
] + [(name, *case) for name, cfg in fishnet.CONFIGS.items() for case in cfg["params"]]


def slow_at_imagenet_size(case: tuple):
    """A model at ImageNet's 224x224 takes seconds to build: its case is slow."""
    return pytest.param(*case, marks=[pytest.mark.slow] * (case[1][0] >= 224))


@pytest.mark.parametrize(
    "name, input_shape, num_classes, options, total, trainable",
    [slow_at_imagenet_size(case) for case in PARAM_COUNTS], ids=case_id,
)
def test_parameter_count(name, input_shape, num_classes, options, total, trainable):
    model = built(name, input_shape, num_classes, **options)
    assert model.count_params() == total
    if trainable is not None:
        assert models.count_trainable(model) == trainable


def test_every_model_has_its_parameter_count_at_its_default_options():
    assert {name for name, _, _, options, _, _ in PARAM_COUNTS if options == {}} == set(models.names())


# ---------------------------------------------------------------------------- stage shapes

STAGE_SHAPES = {
    # docs/fishnet.md §3: fishnet99 at 224x224x3 (the stem ends in stem_pool).
    ("fishnet99", 224): {"stem_pool": (56, 56, 64), "tail0_out": (28, 28, 128), "tail1_out": (14, 14, 256),
                         "tail2_out": (7, 7, 512), "bridge3_out": (7, 7, 512), "body4_out": (14, 14, 768),
                         "body5_out": (28, 28, 512), "body6_out": (56, 56, 320), "head7_out": (28, 28, 832),
                         "head8_out": (14, 14, 1600), "head9_out": (7, 7, 2112)},
    # docs/fishnet.md §5: fishnet77 at 56x56x3 (the concise stem ends in stem_relu2).
    ("fishnet77", 56): {"stem_relu2": (56, 56, 16), "tail0_out": (28, 28, 32), "tail1_out": (14, 14, 64),
                        "tail2_out": (7, 7, 128), "bridge3_out": (7, 7, 128), "body4_out": (14, 14, 192),
                        "body5_out": (28, 28, 128), "body6_out": (56, 56, 80), "head7_out": (28, 28, 208),
                        "head8_out": (14, 14, 400), "head9_out": (7, 7, 528)},
    # docs/fishnet.md §5: fishnet55 at 56x56x3.
    ("fishnet55", 56): {"stem_relu2": (56, 56, 8), "tail0_out": (28, 28, 16), "tail1_out": (14, 14, 32),
                        "bridge2_out": (14, 14, 32), "body3_out": (28, 28, 48), "body4_out": (56, 56, 32),
                        "head5_out": (28, 28, 80), "head6_out": (14, 14, 80)},
}


@pytest.mark.parametrize("name, size", list(STAGE_SHAPES))
def test_stage_output_shapes(name, size):
    model = built(name, (size, size, 3), 1000 if size == 224 else 10)
    expected = STAGE_SHAPES[name, size]
    assert {layer: model.get_layer(layer).output.shape[1:] for layer in expected} == expected


@pytest.mark.parametrize("name", ["mobilenet", "fishnet55"])
@pytest.mark.parametrize("momentum", [None, 0.9])
def test_bn_momentum_reaches_every_batch_norm(name, momentum):
    model = built(name, (32, 32, 3), 10, bn_momentum=momentum)
    momenta = {layer.momentum for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert momenta == {momentum or models.options(name)["bn_momentum"]}


def test_block_layers_are_named_after_stage_and_block():
    model = built("fishnet99", (224, 224, 3), 1000)
    assert model.get_layer("body4_block1_conv1").output.shape[1:] == (7, 7, 128)
    assert model.get_layer("body5_block1_squeeze").output.shape[1:] == (14, 14, 384)
    assert model.get_layer("body6_block1_conv2").dilation_rate == (4, 4)
    assert model.get_layer("head9_trans_block4_add").output.shape[1:] == (7, 7, 512)
    assert model.get_layer("tail0_block1_proj_conv").output.shape[1:] == (56, 56, 128)


def test_channel_squeeze_sums_consecutive_channels():
    x = np.arange(2 * 3 * 3 * 6, dtype="float32").reshape(2, 3, 3, 6)
    layer = ChannelSqueeze(3)
    np.testing.assert_allclose(layer(x), x.reshape(2, 3, 3, 2, 3).sum(axis=-1))
    assert ChannelSqueeze.from_config(layer.get_config()).k == 3


# Keras's saving code converts variables with np.array(); NumPy 2 warns about that, not about us.
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_fishnet_survives_a_save_and_load(tmp_path):
    model = built("fishnet55", (64, 64, 3), 10, stem="official")
    model.save(tmp_path / "fishnet55.keras")
    loaded = keras.models.load_model(tmp_path / "fishnet55.keras")
    x = np.random.default_rng(0).random((2, 64, 64, 3), dtype="float32")
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------- forward and gradient

TRAIN_CASES = [
    (name, size, {})
    for name in ("mlp", "cnn", "mobilenet", "fishnet55", "fishnet77")
    for size in (32, 56)
] + [
    (name, size, {})
    for name in ("fishnet99", "fishnet150", "fishnet201")  # the official stem needs multiples of 32
    for size in (32, 64)
] + [
    ("mobilenet", 32, {"head_classes": 1000}),
    ("fishnet55", 32, {"stem": "official", **fishnet.OFFICIAL_SCORE_BLOCKS}),
    ("fishnet99", 32, {"stem": "concise", "head": "dense", "bridge": "report"}),
]


@pytest.mark.slow
@pytest.mark.parametrize("name, size, options", TRAIN_CASES, ids=case_id)
def test_forward_and_one_gradient_step_are_finite(name, size, options):
    keras.utils.set_random_seed(0)
    model = models.build(name, (size, size, 3), 10, **options)
    assert model.name == name
    assert all(w.dtype == "float32" for w in model.weights)
    x = np.random.default_rng(0).random((2, size, size, 3), dtype="float32")
    labels = np.array([0, 9])
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        losses = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        loss = keras.ops.mean(losses)
    grads = tape.gradient(loss, model.trainable_weights)
    keras.optimizers.SGD(0.01).apply_gradients(zip(grads, model.trainable_weights))
    assert logits.shape == (2, options.get("head_classes", 10))
    assert all_finite([logits, loss, *grads, *model.trainable_weights])


# ---------------------------------------------------------------------------- FLOPs


def test_flops_of_mlp_by_hand():
    inputs = 56 * 56 * 3
    hidden = 2 * inputs * 256 + 256 + 256  # multiply-adds, bias, ReLU
    logits = 2 * 256 * 10 + 10
    total = hidden + logits
    assert models.flops(built("mlp", (56, 56, 3), 10)) == total == 4_822_538


def test_flops_of_cnn_by_hand():
    conv_outputs = 56 * 56 * 9
    conv = 2 * (5 * 5 * 3) * conv_outputs + conv_outputs + conv_outputs  # multiply-adds, bias, ReLU
    pool = (2 * 2) * (28 * 28 * 9)
    hidden = 2 * (28 * 28 * 9) * 520 + 520 + 520
    logits = 2 * 520 * 10 + 10
    total = conv + pool + hidden + logits
    assert models.flops(built("cnn", (56, 56, 3), 10)) == total == 11_667_962


def test_the_reports_cnn_has_tanh_activations_and_average_pooling_at_the_same_flops():
    report = built("cnn", (56, 56, 3), 10, activation="tanh", pool="average")
    layers = {layer.name: layer for layer in report.layers}
    assert layers["conv"].activation is layers["hidden"].activation is keras.activations.tanh
    assert isinstance(layers["pool"], keras.layers.AveragePooling2D)
    assert models.flops(report) == models.flops(built("cnn", (56, 56, 3), 10))


def test_flops_recurse_into_nested_models():
    inner = built("cnn", (56, 56, 3), 10)
    inputs = keras.Input((56, 56, 3))
    outer = keras.Model(inputs, keras.layers.ReLU()(inner(inputs)))
    assert models.flops(outer) == models.flops(inner) + 10


def test_flops_refuse_unknown_layers():
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.LayerNormalization(name="ln")(inputs))
    with pytest.raises(ValueError, match="no rule for layer 'ln' of type LayerNormalization"):
        models.flops(model)


@pytest.mark.parametrize(
    "name, published",
    [
        ("fishnet99", 4.31e9),  # docs/fishnet.md §4, the official README; its counter takes 1 FLOP
        ("fishnet150", 6.45e9),  # per multiply-add, so compare with half of ours
        ("fishnet201", 10.58e9),
    ],
)
def test_flops_of_official_fishnets_match_published(name, published):
    half = models.flops(built(name, (224, 224, 3), 1000)) / 2
    assert half == pytest.approx(published, rel=0.01)


def test_flops_of_mobilenet_match_its_paper():
    # Howard et al. 2017, Table 8: 569M multiply-adds at 224x224 (ours adds BN, ReLU, biases).
    half = models.flops(built("mobilenet", (224, 224, 3), 1000)) / 2
    assert half == pytest.approx(569e6, rel=0.02)


def test_the_reports_conv_head_has_no_relu_after_its_second_bn_no_softmax_and_a_loss_on_probabilities():
    report = models.build("fishnet55", (56, 56, 3), 10, head="report_conv")
    assert report.get_layer("score_pool").input is report.get_layer("score_bn2").output  # no ReLU between
    assert report.layers[-1].name == "score_fc" and report.layers[-1].activation is keras.activations.linear
    assert not models.from_logits(report)  # its raw outputs go to a loss that expects probabilities
    restored = models.build("fishnet55", (56, 56, 3), 10, head="report_conv_softmax")
    assert isinstance(restored.layers[-1], keras.layers.Softmax) and not models.from_logits(restored)
    official = models.build("fishnet55", (56, 56, 3), 10, head="conv")
    assert official.get_layer("score_pool").input is official.get_layer("score_relu2").output
    assert models.from_logits(official) and models.from_logits(models.build("fishnet55", (56, 56, 3), 10))
    assert report.count_params() == restored.count_params() == official.count_params() == 40_752
