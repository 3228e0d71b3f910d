#!/usr/bin/env python3
"""BNSpec adapter: MLX (CPU), mlx.nn.BatchNorm with its defaults (momentum 0.1 on the batch,
eps 1e-5) unless the request sets them. MLX normalises the last axis (channels-last):
NCHW is transposed around the call. Gradients with mx.vjp."""
import importlib.metadata
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))  # the checkout's bnspec package
import mlx.core as mx  # noqa: E402
import mlx.nn as nn  # noqa: E402
import numpy as np  # noqa: E402
from bnspec import Adapter, serve  # noqa: E402

mx.set_default_device(mx.cpu)
DT = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}


def last(x, layout):
    return np.moveaxis(x, 1, -1) if layout == "NCHW" else x


def back(y, layout):
    return np.moveaxis(y, -1, 1) if layout == "NCHW" else y


class MlxBN(Adapter):
    name = "mlx"
    version = importlib.metadata.version("mlx")
    supports = {"ops": ["train", "infer", "backward-train", "backward-infer", "trajectory", "epoch"],
                "dtypes": ["float32", "float16", "bfloat16"], "layouts": ["NCHW", "NHWC", "NC"], "cumulative": False}

    def layer(self, req, g, b, m, v):
        kw = {}
        if req.get("eps") is not None:
            kw["eps"] = req["eps"]
        if req.get("raw_momentum") is not None:
            kw["momentum"] = req["raw_momentum"]
        elif req.get("batch_weight") is not None:
            kw["momentum"] = req["batch_weight"]  # MLX's momentum weights the batch
        bn = nn.BatchNorm(g.size, **kw)
        bn.weight, bn.bias = mx.array(np.asarray(g, np.float32)), mx.array(np.asarray(b, np.float32))
        bn.running_mean, bn.running_var = mx.array(np.asarray(m, np.float32)), mx.array(np.asarray(v, np.float32))
        return bn

    def x(self, req, x):
        return mx.array(np.ascontiguousarray(last(np.asarray(x, np.float32), req["layout"]))).astype(DT[req["dtype"]])

    @staticmethod
    def out(a):
        return np.array(a.astype(mx.float32), dtype=np.float64)

    def train(self, req, x, gamma, beta, running_mean, running_var):
        bn = self.layer(req, gamma, beta, running_mean, running_var)
        bn.train()
        y = bn(self.x(req, x))
        mx.eval(y, bn.running_mean, bn.running_var)
        return {"y": back(self.out(y), req["layout"]), "running_mean": self.out(bn.running_mean),
                "running_var": self.out(bn.running_var)}

    def infer(self, req, x, gamma, beta, mean, var):
        bn = self.layer(req, gamma, beta, mean, var)
        bn.eval()
        return {"y": back(self.out(bn(self.x(req, x))), req["layout"])}

    def grads(self, req, x, dy, gamma, beta, training, mean=None, var=None):
        C = gamma.size
        bn = self.layer(req, gamma, beta, mean if mean is not None else np.zeros(C), var if var is not None else np.ones(C))
        bn.train() if training else bn.eval()

        def f(xx, w, b):
            bn.weight, bn.bias = w, b
            return bn(xx)

        xx = self.x(req, x)
        dyy = mx.array(np.ascontiguousarray(last(np.asarray(dy, np.float32), req["layout"]))).astype(xx.dtype)
        _, (dx, dg, db) = mx.vjp(f, [xx, bn.weight, bn.bias], [dyy])
        return {"dx": back(self.out(dx), req["layout"]), "dgamma": self.out(dg), "dbeta": self.out(db)}

    def backward_train(self, req, x, dy, gamma, beta):
        return self.grads(req, x, dy, gamma, beta, True)

    def backward_infer(self, req, x, dy, gamma, beta, mean, var):
        return self.grads(req, x, dy, gamma, beta, False, mean, var)


if __name__ == "__main__":
    serve(MlxBN())
