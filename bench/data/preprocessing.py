"""A dataset's arrays preprocessed as a run asks: a stratified training subset, channels, size.

``bench.data.datasets.load`` applies them once per dataset and setting and caches the result
(``bench.data.cache``); the arrays stay uint8, and pixel scaling is left to the training input
pipeline, so one cached copy serves both recipes.
"""
from __future__ import annotations

import numpy as np

from bench.spec import Preprocess


def stratified_indices(labels: np.ndarray, per_class: int, seed: int, setting: str = "train_per_class",
                       where: str = "the training set") -> np.ndarray:
    """Sorted indices of ``per_class`` examples of every class, drawn without replacement.

    Raises:
        ValueError: some class holds fewer than ``per_class`` examples (``check_per_class``).
    """
    labels = np.asarray(labels).ravel()
    classes, counts = np.unique(labels, return_counts=True)
    check_per_class(setting, per_class, counts, where)
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in classes]
    return np.sort(np.concatenate(picks))


def check_per_class(setting: str, per_class: int, counts, where: str) -> None:
    """Raise ValueError, naming ``setting``, unless each class of ``where`` that has images
    (``counts``: images per class) has ``per_class`` of them."""
    smallest = min(int(count) for count in counts if count)
    if per_class > smallest:
        raise ValueError(f"{setting} is larger than the smallest class of {where} ({smallest} images); "
                         f"accepted: 1..{smallest}. Received: {setting}={per_class}")


def as_nhwc(images: np.ndarray) -> np.ndarray:
    """Images with a channel axis: (N, H, W) grayscale gets one."""
    return images[..., None] if images.ndim == 3 else images


def convert_channels(images: np.ndarray, channels: int | None) -> np.ndarray:
    """Repeat grayscale to RGB (as the report did) or take RGB luminance (ITU-R 601)."""
    have = images.shape[-1]
    if channels is None or channels == have:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=-1)
    luminance = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(np.round(luminance), 0, 255).astype(np.uint8)[..., None]


def resize(images: np.ndarray, size: int | None, chunk: int = 5000) -> np.ndarray:
    """Bilinear resize to size x size (TensorFlow's, as the report's code), rounded to uint8."""
    if size is None or images.shape[1:3] == (size, size):
        return images
    import tensorflow as tf  # late: only resizing needs it

    out = np.empty((len(images), size, size, images.shape[-1]), np.uint8)
    for start in range(0, len(images), chunk):
        batch = tf.image.resize(images[start : start + chunk], (size, size), method="bilinear")
        out[start : start + chunk] = np.clip(np.round(batch.numpy()), 0, 255).astype(np.uint8)
    return out


def apply(arrays: dict[str, np.ndarray], preprocess: Preprocess, subset: bool = True) -> dict[str, np.ndarray]:
    """Subset (unless `subset` is False: a generated set is drawn at its size), convert channels
    and resize; labels become flat int64."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    y_train = arrays["y_train"].ravel().astype(np.int64)
    x_train = arrays["x_train"]
    if preprocess.train_per_class is not None and subset:
        keep = stratified_indices(y_train, preprocess.train_per_class, preprocess.subset_seed)
        x_train, y_train = x_train[keep], y_train[keep]
    out = {"y_train": y_train, "y_test": arrays["y_test"].ravel().astype(np.int64)}
    for key, images in (("x_train", x_train), ("x_test", arrays["x_test"])):
        out[key] = resize(convert_channels(as_nhwc(images), preprocess.channels), preprocess.size)
    return out
