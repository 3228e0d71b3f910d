#!/usr/bin/env python3
"""BNSpec adapter: TensorFlow CPU. Two flavours:

    tensorflow_bn.py keras   keras.layers.BatchNormalization (Keras 3 on TensorFlow; momentum 0.99, epsilon 1e-3)
    tensorflow_bn.py fused   tf.compat.v1.nn.fused_batch_norm (epsilon 1e-3, exponential_avg_factor 1.0)

with the framework's defaults unless the request sets eps / momentum."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))  # the checkout's bnspec package
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bnspec import Adapter, serve  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
import keras  # noqa: E402

DT = {"float32": tf.float32, "float16": tf.float16, "bfloat16": tf.bfloat16, "float64": tf.float64}


def as_np(t):
    return np.asarray(tf.cast(t, tf.float64) if t.dtype in (tf.bfloat16,) else t).astype(np.float64)


class KerasBN(Adapter):
    name = "keras"
    version = f"keras {keras.__version__} / tensorflow {tf.__version__}"
    supports = {"ops": ["train", "infer", "backward-train", "backward-infer", "trajectory", "epoch"],
                "dtypes": ["float32", "float16", "bfloat16"], "layouts": ["NCHW", "NHWC", "NC"], "cumulative": False}

    def layer(self, req, x, g, b, rm, rv, **extra):
        kw = dict({"axis": 1 if req["layout"] == "NCHW" else -1}, **extra)
        if req.get("eps") is not None:
            kw["epsilon"] = req["eps"]
        if req.get("raw_momentum") is not None:
            kw["momentum"] = req["raw_momentum"]
        elif req.get("batch_weight") is not None:
            kw["momentum"] = 1.0 - req["batch_weight"]  # Keras' momentum weights the moving value
        lay = keras.layers.BatchNormalization(**kw)
        lay.build(x.shape)
        lay.set_weights([np.asarray(a, np.float32) for a in (g, b, rm, rv)])
        return lay

    def x(self, req, x):
        return tf.constant(np.asarray(x, np.float32), dtype=DT[req["dtype"]])

    def train(self, req, x, gamma, beta, running_mean, running_var):
        lay = self.layer(req, x, gamma, beta, running_mean, running_var)
        y = lay(self.x(req, x), training=True)
        return {"y": as_np(y), "running_mean": lay.moving_mean.numpy(), "running_var": lay.moving_variance.numpy()}

    def infer(self, req, x, gamma, beta, mean, var):
        lay = self.layer(req, x, gamma, beta, mean, var)
        return {"y": as_np(lay(self.x(req, x), training=False))}

    def grads(self, req, x, dy, gamma, beta, training, mean=None, var=None):
        C = gamma.size
        lay = self.layer(req, x, gamma, beta, mean if mean is not None else np.zeros(C), var if var is not None else np.ones(C))
        xt = self.x(req, x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = lay(xt, training=training)
        dx, dg, db = tape.gradient(y, [xt, lay.gamma, lay.beta], output_gradients=tf.cast(tf.constant(dy), y.dtype))
        return {"dx": as_np(dx), "dgamma": as_np(dg), "dbeta": as_np(db)}

    def backward_train(self, req, x, dy, gamma, beta):
        return self.grads(req, x, dy, gamma, beta, True)

    def backward_infer(self, req, x, dy, gamma, beta, mean, var):
        return self.grads(req, x, dy, gamma, beta, False, mean, var)


class FusedBN(Adapter):
    name = "tf.nn.fused_batch_norm"
    version = f"tensorflow {tf.__version__}"
    supports = {"ops": ["train", "infer", "trajectory", "epoch"], "dtypes": ["float32", "float16", "bfloat16"],
                "layouts": ["NCHW", "NHWC", "NC"], "cumulative": False}

    @staticmethod
    def nhwc(x, layout):
        """To a 4-D NHWC tensor (the CPU kernel's layout)."""
        if layout == "NC":
            return x.reshape(x.shape[0], 1, 1, x.shape[1])
        if layout == "NCHW":
            x = np.moveaxis(x, 1, -1)
        while x.ndim < 4:
            x = x[:, None]
        return np.ascontiguousarray(x)

    @staticmethod
    def back(y, shape, layout):
        if layout == "NC":
            return y.reshape(shape)
        if layout == "NCHW":
            moved = list(shape[:1]) + list(shape[2:]) + [shape[1]]
            return np.moveaxis(y.reshape(moved), -1, 1)
        return y.reshape(shape)

    def kw(self, req):
        k = {}
        if req.get("eps") is not None:
            k["epsilon"] = req["eps"]
        if req.get("raw_momentum") is not None:
            k["exponential_avg_factor"] = req["raw_momentum"]
        elif req.get("batch_weight") is not None:
            k["exponential_avg_factor"] = req["batch_weight"]  # weights the batch statistic
        return k

    def train(self, req, x, gamma, beta, running_mean, running_var):
        xt = tf.constant(self.nhwc(np.asarray(x, np.float32), req["layout"]), dtype=DT[req["dtype"]])
        y, m, v = tf.compat.v1.nn.fused_batch_norm(xt, gamma.astype(np.float32), beta.astype(np.float32),
                                                   mean=running_mean.astype(np.float32), variance=running_var.astype(np.float32),
                                                   is_training=True, **self.kw(req))[:3]
        return {"y": self.back(as_np(y), x.shape, req["layout"]), "running_mean": m.numpy(), "running_var": v.numpy()}

    def infer(self, req, x, gamma, beta, mean, var):
        xt = tf.constant(self.nhwc(np.asarray(x, np.float32), req["layout"]), dtype=DT[req["dtype"]])
        k = {"epsilon": req["eps"]} if req.get("eps") is not None else {}
        y = tf.compat.v1.nn.fused_batch_norm(xt, gamma.astype(np.float32), beta.astype(np.float32), mean=mean.astype(np.float32),
                                             variance=var.astype(np.float32), is_training=False, **k)[0]
        return {"y": self.back(as_np(y), x.shape, req["layout"])}


if __name__ == "__main__":
    flavour = sys.argv[1] if len(sys.argv) > 1 else "keras"
    if flavour not in ("keras", "fused"):
        sys.exit("tensorflow_bn: error: flavour must be 'keras' or 'fused'")
    serve(KerasBN() if flavour == "keras" else FusedBN())
