#!/usr/bin/env python3
"""BNSpec adapter: ONNX Runtime (CPU), one BatchNormalization node (opset 15), inference and
training_mode=1, with ONNX's defaults (epsilon 1e-5, momentum 0.9) unless the request sets
them. NHWC is transposed to NCHW around the node. Backward is not an ONNX operator."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))  # the checkout's bnspec package
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402
from bnspec import Adapter, serve  # noqa: E402

TP = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "float64": TensorProto.DOUBLE}
NP = {"float32": np.float32, "float16": np.float16, "float64": np.float64}


class OrtBN(Adapter):
    name = "onnxruntime"
    version = f"{ort.__version__} (onnx {onnx.__version__})"
    supports = {"ops": ["train", "infer", "trajectory", "epoch"], "dtypes": ["float32", "float16", "float64"],
                "layouts": ["NCHW", "NHWC", "NC"], "cumulative": False}

    def __init__(self):
        self.sessions = {}

    def session(self, dtype, training, eps, momentum, ndim):
        key = (dtype, training, eps, momentum, ndim)
        if key not in self.sessions:
            t = TP[dtype]
            ins = [helper.make_tensor_value_info("X", t, [None] * ndim)] + \
                  [helper.make_tensor_value_info(n, t, [None]) for n in ("scale", "B", "mean", "var")]
            outs = ["Y", "running_mean", "running_var"] if training else ["Y"]
            attrs = {"training_mode": 1 if training else 0}
            if eps is not None:
                attrs["epsilon"] = eps
            if momentum is not None:
                attrs["momentum"] = momentum
            node = helper.make_node("BatchNormalization", ["X", "scale", "B", "mean", "var"], outs, **attrs)
            graph = helper.make_graph([node], "bn", ins, [helper.make_tensor_value_info(n, t, None) for n in outs])
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
            so = ort.SessionOptions()
            so.intra_op_num_threads = 1
            so.log_severity_level = 3
            self.sessions[key] = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return self.sessions[key]

    @staticmethod
    def momentum(req):
        if req.get("raw_momentum") is not None:
            return float(req["raw_momentum"])
        if req.get("batch_weight") is not None:
            return 1.0 - float(req["batch_weight"])  # ONNX's momentum weights the running value
        return None

    def run(self, req, training, x, g, b, m, v):
        dt = req["dtype"]
        nhwc = req["layout"] == "NHWC"
        xx = np.moveaxis(x, -1, 1) if nhwc else x
        s = self.session(dt, training, req.get("eps"), self.momentum(req) if training else None, x.ndim)
        feeds = {"X": np.ascontiguousarray(xx.astype(NP[dt]))}
        for k, a in (("scale", g), ("B", b), ("mean", m), ("var", v)):
            feeds[k] = np.asarray(a, NP[dt])
        out = s.run(None, feeds)
        y = np.moveaxis(out[0], 1, -1) if nhwc else out[0]
        return [y] + out[1:]

    def train(self, req, x, gamma, beta, running_mean, running_var):
        y, rm, rv = self.run(req, True, x, gamma, beta, running_mean, running_var)
        return {"y": y, "running_mean": rm, "running_var": rv}

    def infer(self, req, x, gamma, beta, mean, var):
        return {"y": self.run(req, False, x, gamma, beta, mean, var)[0]}


if __name__ == "__main__":
    serve(OrtBN())
