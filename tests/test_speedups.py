"""The harness's speed-ups (bench.speedups) compute what plain Keras computes.

Nothing here asserts a timing: timings are measured by `python -m bench speed`, not tested.
"""
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

import models
from bench.data import cache
from bench.run import train
from bench.speed import modes
from bench.speedups import process, training
from bench.speedups.fused import FusedBatchNormalization, fuse_batch_norm

# ---------------------------------------------------------------- fused batch norm


def _bn_pair(shape, **kwargs):
    """A Keras BatchNormalization and a FusedBatchNormalization with equal, non-trivial weights."""
    stock, fused = keras.layers.BatchNormalization(**kwargs), FusedBatchNormalization(**kwargs)
    rng = np.random.default_rng(0)
    weights = [rng.uniform(0.5, 1.5, shape[-1]), rng.normal(size=shape[-1]), rng.normal(size=shape[-1]),
               rng.uniform(0.5, 2.0, shape[-1])]  # gamma, beta, moving mean, moving variance
    for layer in (stock, fused):
        layer.build(shape)
        layer.set_weights([w.astype("float32") for w in weights])
    return stock, fused


def _train_step(layer, x, graph):
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.nn.relu(y) * tf.range(1.0, y.shape[-1] + 1.0))  # channels weigh differently
        return y, tape.gradient(loss, [x, *layer.trainable_weights])

    return (tf.function(step) if graph else step)(x)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
@pytest.mark.parametrize("shape", [(4, 6, 6, 3), (8, 5, 7, 12)], ids=lambda s: "x".join(map(str, s)))
def test_fused_batch_norm_matches_keras_in_training(shape, graph):
    stock, fused = _bn_pair(shape, momentum=0.9, epsilon=1e-3)
    x = tf.constant(np.random.default_rng(1).normal(3.0, 2.0, shape).astype("float32"))
    (y_stock, grads_stock), (y_fused, grads_fused) = _train_step(stock, x, graph), _train_step(fused, x, graph)
    np.testing.assert_allclose(y_fused, y_stock, rtol=1e-4, atol=1e-4)
    for g_fused, g_stock in zip(grads_fused, grads_stock):  # d/dx, d/dgamma, d/dbeta
        np.testing.assert_allclose(g_fused, g_stock, rtol=1e-3, atol=1e-3 * float(tf.reduce_max(tf.abs(g_stock))))
    # the moving statistics: Keras's update, with the biased batch variance
    np.testing.assert_allclose(fused.moving_mean.numpy(), stock.moving_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused.moving_variance.numpy(), stock.moving_variance.numpy(), rtol=1e-5, atol=1e-6)
    batch_variance = np.var(x.numpy().reshape(-1, shape[-1]), axis=0)
    expected = 0.9 * _bn_pair(shape)[0].get_weights()[3] + 0.1 * batch_variance
    np.testing.assert_allclose(fused.moving_variance.numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
def test_fused_batch_norm_matches_keras_in_inference(graph):
    stock, fused = _bn_pair((4, 6, 6, 5), epsilon=1e-3)
    x = tf.constant(np.random.default_rng(2).normal(size=(4, 6, 6, 5)).astype("float32"))
    call = (lambda layer: tf.function(lambda x: layer(x, training=False))) if graph else (
        lambda layer: lambda x: layer(x, training=False))
    np.testing.assert_allclose(call(fused)(x), call(stock)(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fused.moving_mean.numpy(), stock.moving_mean.numpy())  # untouched


def test_fused_batch_norm_falls_back_where_it_cannot_fuse():
    stock, fused = _bn_pair((4, 10), momentum=0.9)  # a 2-D input (after a Dense)
    x = np.random.default_rng(3).normal(size=(4, 10)).astype("float32")
    np.testing.assert_allclose(fused(x, training=True), stock(x, training=True), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fused.moving_variance.numpy(), stock.moving_variance.numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", ["fishnet55", "mobilenet"])
def test_fuse_batch_norm_keeps_weights_counts_and_function(name):
    keras.utils.set_random_seed(0)
    stock = models.build(name, (32, 32, 3), 10)
    keras.utils.set_random_seed(0)
    fused = models.build(name, (32, 32, 3), 10)
    switched = fuse_batch_norm(fused)
    assert switched == sum(isinstance(layer, keras.layers.BatchNormalization) for layer in stock.layers) > 0
    assert fused.count_params() == stock.count_params()
    assert [w.path for w in fused.weights] == [w.path for w in stock.weights]
    for a, b in zip(fused.weights, stock.weights):  # the same initial weights from the same seed
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert models.flops(fused) == models.flops(stock)
    x = np.random.default_rng(4).random((4, 32, 32, 3), dtype="float32")
    np.testing.assert_allclose(fused(x, training=False), stock(x, training=False), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fused(x, training=True), stock(x, training=True), rtol=1e-3, atol=1e-3)


# Keras's saving code converts variables with np.array(); NumPy 2 warns about that, not about us.
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_fused_model_survives_a_save_and_load(tmp_path):
    model = models.build("fishnet55", (16, 16, 3), 10)
    fuse_batch_norm(model)
    model.save(tmp_path / "fused.keras")
    loaded = keras.models.load_model(tmp_path / "fused.keras")
    assert any(isinstance(layer, FusedBatchNormalization) for layer in loaded.layers)
    x = np.random.default_rng(5).random((2, 16, 16, 3), dtype="float32")
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- one-op SGD


@pytest.mark.parametrize("weight_decay", [None, 0.01])
def test_momentum_sgd_is_keras_sgd(weight_decay):
    results = []
    for sgd in (keras.optimizers.SGD, training.MomentumSGD):
        rng = np.random.default_rng(0)
        variables = [keras.Variable(rng.normal(size=(20, 7)).astype("float32")), keras.Variable(np.ones(7, "float32"))]
        schedule = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=10)
        optimizer = sgd(schedule, momentum=0.9, weight_decay=weight_decay)
        step = tf.function(lambda grads: optimizer.apply_gradients(zip(grads, variables)))
        for i in range(4):
            grads_rng = np.random.default_rng(10 + i)
            step([tf.constant(grads_rng.normal(size=v.shape).astype("float32")) for v in variables])
        results.append([v.numpy() for v in (*variables, *optimizer.momentums)])
    for fused, stock in zip(*results):
        np.testing.assert_allclose(fused, stock, rtol=1e-6, atol=1e-7)


FALLBACKS = {  # what MomentumSGD leaves to Keras's own update: its settings, and the gradient
    "no momentum": ({"momentum": 0.0}, lambda shape: tf.ones(shape)),
    "nesterov": ({"momentum": 0.9, "nesterov": True}, lambda shape: tf.ones(shape)),
    "sparse gradient": ({"momentum": 0.9}, lambda shape: tf.IndexedSlices(tf.ones((1, shape[1])), tf.constant([2]),
                                                                         tf.constant(shape))),
}


@pytest.mark.parametrize("settings, gradient", FALLBACKS.values(), ids=FALLBACKS)
def test_momentum_sgd_falls_back_to_keras_update_where_its_one_op_does_not_apply(monkeypatch, settings, gradient):
    """Keras's update, not the one op: the op is never called, and the weights are Keras SGD's."""
    monkeypatch.setattr(tf.raw_ops, "ResourceApplyKerasMomentum",
                        lambda **kwargs: pytest.fail("the one-op update ran where Keras's should"))
    results = []
    for sgd in (keras.optimizers.SGD, training.MomentumSGD):
        variable = keras.Variable(np.arange(12, dtype="float32").reshape(4, 3))
        optimizer = sgd(0.5, **settings)
        for _ in range(2):
            optimizer.apply_gradients([(gradient((4, 3)), variable)])
        results.append(variable.numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6)


# ---------------------------------------------------------------- the model's other speed-ups


def test_steps_per_execution_grows_as_steps_shrink():
    assert training.steps_per_execution(10**9, 32) == 1  # 96 GFLOP per step
    assert training.steps_per_execution(5 * 10**6, 32) == training.MAX_STEPS_PER_EXECUTION
    assert training.steps_per_execution(12 * 10**6, 32) == 6
    assert training.steps_per_execution(0, 32) == training.MAX_STEPS_PER_EXECUTION


def _grappler_disabled():
    return tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)


def test_training_graph_settings_switch_grappler_for_training_only():
    seen = {}

    class Spy(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen["train"] = _grappler_disabled()

        def on_test_batch_begin(self, batch, logs=None):
            seen["test"] = _grappler_disabled()

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((8, 3), "float32"), np.zeros((8, 2), "float32")
    before = _grappler_disabled()
    with training.TrainingGraphSettings() as settings:
        model.fit(x, y, validation_data=(x, y), callbacks=[settings, Spy()], verbose=0)
    assert seen == {"train": True, "test": before}
    assert _grappler_disabled() == before
    with pytest.raises(RuntimeError), training.TrainingGraphSettings() as settings:
        settings.on_train_begin()
        raise RuntimeError("fit failed")
    assert _grappler_disabled() == before


@pytest.mark.parametrize("name", ["mlp", "fishnet55"])
def test_the_model_with_and_without_speedups_starts_the_same(name):
    spec = modes.speed_spec(name, batch_size=8, threads=1)
    built = {}
    for speedups in (True, False):
        keras.utils.set_random_seed(spec.seed)
        built[speedups] = train.build_model(dataclasses.replace(spec, speedups=speedups), (16, 16, 3), 10, 4)
    assert built[True].count_params() == built[False].count_params()
    for a, b in zip(built[True].weights, built[False].weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert built[True].optimizer.built
    assert isinstance(built[True].optimizer, training.MomentumSGD)
    assert type(built[False].optimizer) is keras.optimizers.SGD


@pytest.mark.slow
def test_the_harness_traces_its_train_step_once():
    dataset = modes.synthetic_dataset((16, 16, 3), train_images=32, test_images=16)
    spec = modes.speed_spec("fishnet55", batch_size=8, threads=1)
    pipeline, _, _ = train.make_inputs(dataset, spec)
    model = train.build_model(spec, (16, 16, 3), 10, 4)
    metric_state = [v.numpy() for m in model.metrics for v in m.variables]
    assert metric_state and all((value == 0).all() for value in metric_state)  # the dummy batch is forgotten
    traces = []
    step = model.train_step
    model.train_step = lambda data: traces.append(1) or step(data)
    with training.TrainingGraphSettings() as settings:
        model.fit(pipeline, epochs=2, callbacks=[settings], shuffle=False, verbose=0)
    assert len(traces) == 1  # every variable existed before the first trace


@pytest.mark.slow
def test_a_run_trains_with_the_speed_ups(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path))  # the synthetic images are cached here
    spec = modes.speed_spec("fishnet55", batch_size=16, threads=1)
    preprocess = dataclasses.replace(spec.preprocess, native_size=16, channels=3, train_per_class=6)  # 60 images
    record = train.run(dataclasses.replace(spec, epochs=2, preprocess=preprocess))
    # it trains to the end (ok, whether or not 2 epochs of 60 images teach FishNet55 anything: learned_nothing)
    assert record.status == "ok", record.error
    assert len(record.history) == 2 and 0.0 <= record.test_accuracy <= 1.0
    assert record.params_total == models.build("fishnet55", (16, 16, 3), 10).count_params()
    assert isinstance(record.environment["onednn"], bool)  # how its timings were made


# ---------------------------------------------------------------- process settings


def test_the_process_settings_ask_for_onednn_only_with_the_speedups(monkeypatch):
    monkeypatch.delenv(process.ONEDNN_ENV, raising=False)
    assert process.tensorflow_env(2)[process.ONEDNN_ENV] == "1"
    assert process.ONEDNN_ENV not in process.tensorflow_env(2, speedups=False)  # TensorFlow's default
    monkeypatch.setenv(process.ONEDNN_ENV, "0")
    assert process.tensorflow_env(2)[process.ONEDNN_ENV] == "0"  # the user's choice wins
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    assert "TF_NUM_INTRAOP_THREADS" not in process.tensorflow_env(None)  # TensorFlow's choice: every core
    assert process.tensorflow_env(3)["TF_NUM_INTEROP_THREADS"] == "2"
