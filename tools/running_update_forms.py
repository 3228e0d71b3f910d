#!/usr/bin/env python3
"""What real running updates do with a non-finite running statistic (spec §5.3): one training step
from running means [NaN, +Inf, −Inf, 0] in PyTorch's BatchNorm1d, Keras 3's BatchNormalization and
TensorFlow's moving_averages.assign_moving_average (r − (r − b)·(1 − decay)). The blend
(1 − w)·r + w·b keeps each infinity; the rearranged form gives ∞ − ∞ = NaN. Both are accepted.

    .venv-frameworks/bin/python tools/running_update_forms.py
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402

r0 = np.array([np.nan, np.inf, -np.inf, 0.0], np.float32)
x = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)


def show(name, values):
    print(f"{name:45s} {np.asarray(values)}")


show("initial running mean", r0)
try:
    import torch
    m = torch.nn.BatchNorm1d(4)
    m.running_mean[:] = torch.from_numpy(r0)
    m(torch.from_numpy(x))
    show(f"torch {torch.__version__} BatchNorm1d", m.running_mean.numpy())
except ImportError:
    print("torch: not installed")
try:
    import tensorflow as tf
    from tensorflow.python.training import moving_averages
    bn = tf.keras.layers.BatchNormalization(momentum=0.9)
    bn.build(x.shape)
    bn.moving_mean.assign(r0)
    bn(x, training=True)
    show(f"keras {tf.keras.__version__} BatchNormalization", bn.moving_mean.numpy())
    v = tf.Variable(r0)
    moving_averages.assign_moving_average(v, tf.constant(x.mean(axis=0)), decay=0.9, zero_debias=False)
    show(f"tensorflow {tf.__version__} assign_moving_average", v.numpy())
except ImportError:
    print("tensorflow: not installed")
