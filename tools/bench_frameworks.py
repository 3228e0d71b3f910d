#!/usr/bin/env python3
"""Time and measure other frameworks' batch normalization the way `bnspec bench` and
`bnspec accuracy` measure BNSpec's kernels, so both can be read side by side.

Speed: median of interleaved runs (framework BN, then memcpy of its input tensors with
numpy.copyto, each into one buffer of their size), ratio = BN time / memcpy time, float32, NCHW, 1 thread.
Accuracy: normwise error of training forward in float32 ULPs,
max|y - y_ref| / ulp(max|y_ref|), worst of 10 seeded inputs, y_ref in float64 two-pass,
on N(0,1) 8x16x7x7, N(0,1) 2x3x1x1, 1e4 + N(0,1) 8x16x7x7; and whether a constant
channel gives exactly beta.

Usage (in the virtualenv of tools/setup_frameworks.sh):
    OMP_NUM_THREADS=1 python3 tools/bench_frameworks.py [--json] [--quick] [--frameworks numpy,onnxruntime,torch]
Frameworks that are not installed are skipped with a note on stderr.
"""
import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402

EPS = 1e-5


# ---------------------------------------------------------------- implementations
class NumpyBN:
    name = "numpy"

    def __init__(self):
        self.version = np.__version__

    def training(self, x, g, b):
        m = x.mean(axis=(0, 2, 3), keepdims=True, dtype=np.float32)
        v = ((x - m) ** 2).mean(axis=(0, 2, 3), keepdims=True, dtype=np.float32)
        return (x - m) / np.sqrt(v + np.float32(EPS)) * g.reshape(1, -1, 1, 1) + b.reshape(1, -1, 1, 1)

    def inference(self, x, g, b, m, v):
        s = (g / np.sqrt(v + np.float32(EPS))).reshape(1, -1, 1, 1)
        return (x - m.reshape(1, -1, 1, 1)) * s + b.reshape(1, -1, 1, 1)

    def backward_fn(self, x, dy, g):
        n = x.shape[0] * x.shape[2] * x.shape[3]
        def run():
            m = x.mean(axis=(0, 2, 3), keepdims=True)
            v = ((x - m) ** 2).mean(axis=(0, 2, 3), keepdims=True)
            r = 1 / np.sqrt(v + np.float32(EPS))
            xh = (x - m) * r
            sdy = dy.sum(axis=(0, 2, 3), keepdims=True)
            sdyx = (dy * xh).sum(axis=(0, 2, 3), keepdims=True)
            return g.reshape(1, -1, 1, 1) * r * (dy - sdy / n - xh * sdyx / n)
        return run


class TorchBN:
    name = "torch"

    def __init__(self):
        import torch
        torch.set_num_threads(1)
        self.t = torch
        self.version = torch.__version__

    def training(self, x, g, b):
        t = self.t
        rm, rv = t.zeros(x.shape[1]), t.ones(x.shape[1])
        return t.nn.functional.batch_norm(t.from_numpy(x), rm, rv, t.from_numpy(g), t.from_numpy(b), True, 0.1, EPS).numpy()

    def inference(self, x, g, b, m, v):
        t = self.t
        return t.nn.functional.batch_norm(t.from_numpy(x), t.from_numpy(m), t.from_numpy(v), t.from_numpy(g), t.from_numpy(b),
                                          False, 0.1, EPS).numpy()

    def backward_fn(self, x, dy, g):
        t = self.t
        xt, dyt, gt = t.from_numpy(x), t.from_numpy(dy), t.from_numpy(g)
        _, mean, invstd = t.ops.aten.native_batch_norm(xt, gt, None, None, None, True, 0.1, EPS)[:3]
        def run():
            return t.ops.aten.native_batch_norm_backward(dyt, xt, gt, None, None, mean, invstd, True, EPS, [True, True, True])
        return run


class OrtBN:
    name = "onnxruntime"

    def __init__(self):
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper
        self.onnx, self.ort, self.helper, self.TP = onnx, ort, helper, TensorProto
        self.version = ort.__version__
        self.sessions = {}

    def session(self, training, C):
        key = (training, C)
        if key not in self.sessions:
            h, TP = self.helper, self.TP
            inputs = [h.make_tensor_value_info(n, TP.FLOAT, s) for n, s in
                      [("x", None), ("g", [C]), ("b", [C]), ("m", [C]), ("v", [C])]]
            outs = ["y", "rm", "rv"] if training else ["y"]
            node = h.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], outs, epsilon=EPS, momentum=0.9,
                               training_mode=1 if training else 0)
            outputs = [h.make_tensor_value_info(n, TP.FLOAT, None) for n in outs]
            model = h.make_model(h.make_graph([node], "bn", inputs, outputs), opset_imports=[h.make_opsetid("", 15)])
            so = self.ort.SessionOptions()
            so.intra_op_num_threads = 1
            so.inter_op_num_threads = 1
            self.sessions[key] = self.ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return self.sessions[key]

    def training(self, x, g, b):
        C = x.shape[1]
        return self.session(True, C).run(None, {"x": x, "g": g, "b": b, "m": np.zeros(C, np.float32),
                                                "v": np.ones(C, np.float32)})[0]

    def inference(self, x, g, b, m, v):
        return self.session(False, x.shape[1]).run(None, {"x": x, "g": g, "b": b, "m": m, "v": v})[0]

    backward_fn = None


class TensorFlowBN:
    name = "tensorflow"

    def __init__(self):
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        self.tf, self.version = tf, tf.__version__

    def training(self, x, g, b):
        tf = self.tf
        xt = tf.transpose(tf.constant(x), [0, 2, 3, 1])
        y = tf.compat.v1.nn.fused_batch_norm(xt, g, b, epsilon=EPS, is_training=True)[0]
        return tf.transpose(y, [0, 3, 1, 2]).numpy()

    def inference(self, x, g, b, m, v):
        tf = self.tf
        xt = tf.transpose(tf.constant(x), [0, 2, 3, 1])
        y = tf.compat.v1.nn.fused_batch_norm(xt, g, b, mean=m, variance=v, epsilon=EPS, is_training=False)[0]
        return tf.transpose(y, [0, 3, 1, 2]).numpy()

    backward_fn = None


class JaxBN:
    name = "jax"

    def __init__(self):
        import jax
        import jax.numpy as jnp
        self.jax, self.jnp, self.version = jax, jnp, jax.__version__
        def train(x, g, b):
            m = jnp.mean(x, axis=(0, 2, 3), keepdims=True)
            v = jnp.mean(jnp.square(x - m), axis=(0, 2, 3), keepdims=True)
            return (x - m) * jax.lax.rsqrt(v + EPS) * g.reshape(1, -1, 1, 1) + b.reshape(1, -1, 1, 1)
        self.train = jax.jit(train)

    def training(self, x, g, b):
        return np.asarray(self.train(x, g, b).block_until_ready())

    inference = None
    backward_fn = None


class MlxBN:
    name = "mlx"

    def __init__(self):
        import mlx.core as mx
        import mlx.nn as nn
        self.mx, self.nn = mx, nn
        import importlib.metadata as md
        self.version = md.version("mlx")

    def training(self, x, g, b):
        mx = self.mx
        bn = self.nn.BatchNorm(x.shape[1], eps=EPS)
        bn.weight, bn.bias = mx.array(g), mx.array(b)
        y = bn(mx.array(np.ascontiguousarray(x.transpose(0, 2, 3, 1))))  # MLX is channels-last
        return np.array(y).transpose(0, 3, 1, 2)

    inference = None
    backward_fn = None


FRAMEWORKS = {"numpy": NumpyBN, "onnxruntime": OrtBN, "torch": TorchBN, "tensorflow": TensorFlowBN, "jax": JaxBN, "mlx": MlxBN}


# ---------------------------------------------------------------- measurement
def median_ratio(fn, inputs, min_seconds=0.3, min_reps=5, max_reps=200):
    """Median time of fn and of memcpy of its input tensors (numpy.copyto of each, in turn,
    into one buffer of their size: x, then dy for backward), interleaved. The copies read
    the framework's own inputs and write one tensor, as `bnspec bench` copies within its
    kernels' buffers: an in-cache shape stays in cache for both."""
    dst = np.empty_like(inputs[0])

    def copy():
        for a in inputs:
            np.copyto(dst, a)
    fn(); copy()
    kt, mt, spent = [], [], 0.0
    while len(kt) < max_reps and (len(kt) < min_reps or spent < min_seconds):
        t0 = time.perf_counter(); fn()
        t1 = time.perf_counter(); copy()
        t2 = time.perf_counter()
        kt.append(t1 - t0); mt.append(t2 - t1); spent += t1 - t0
    k, m = statistics.median(kt), statistics.median(mt)
    return k, m


def speed(impl, shapes):
    rows = []
    rng = np.random.default_rng(0)
    for shape in shapes:
        x = rng.standard_normal(shape, dtype=np.float32)
        dy = rng.standard_normal(shape, dtype=np.float32)
        C = shape[1]
        g, b = np.ones(C, np.float32), np.zeros(C, np.float32)
        m, v = np.zeros(C, np.float32), np.ones(C, np.float32)
        modes = [("training", lambda: impl.training(x, g, b), [x])]
        if getattr(impl, "inference", None):
            modes.append(("inference", lambda: impl.inference(x, g, b, m, v), [x]))
        if getattr(impl, "backward_fn", None):
            modes.append(("backward", impl.backward_fn(x, dy, g), [x, dy]))
        for mode, fn, inputs in modes:
            k, mc = median_ratio(fn, inputs)
            rows.append({"kernel": impl.name, "version": impl.version, "mode": mode, "layout": "NCHW", "shape": list(shape),
                         "threads": 1, "dtype": "float32", "seconds": k, "memcpy_seconds": mc, "ratio": k / mc})
    return rows


def normwise_ulps(y, ref):
    err = float(np.max(np.abs(y.astype(np.float64) - ref)))
    return err / float(np.spacing(np.float32(np.max(np.abs(ref)))))


def reference(x):
    xd = x.astype(np.float64)
    m = xd.mean(axis=(0, 2, 3), keepdims=True)
    v = ((xd - m) ** 2).mean(axis=(0, 2, 3), keepdims=True)
    return (xd - m) / np.sqrt(v + EPS)


def accuracy(impl, trials=10):
    out = {"kernel": impl.name, "version": impl.version, "dtype": "float32"}
    for key, shape, offset in [("normal_8x16x7x7_ulps", (8, 16, 7, 7), 0.0), ("tiny_2x3x1x1_ulps", (2, 3, 1, 1), 0.0),
                               ("offset_1e4_ulps", (8, 16, 7, 7), 1e4)]:
        worst = 0.0
        for t in range(trials):
            rng = np.random.default_rng(1000 + t)
            x = (offset + rng.standard_normal(shape)).astype(np.float32)
            C = shape[1]
            y = np.asarray(impl.training(x, np.ones(C, np.float32), np.zeros(C, np.float32)))
            worst = max(worst, normwise_ulps(y, reference(x)))
        out[key] = worst
    exact = True
    for t in range(trials):
        rng = np.random.default_rng(2000 + t)
        C = 16
        x = np.broadcast_to((100 * rng.standard_normal(C)).astype(np.float32).reshape(1, C, 1, 1), (8, C, 7, 7)).copy()
        g = (0.5 + rng.random(C)).astype(np.float32)
        b = rng.standard_normal(C).astype(np.float32)
        y = np.asarray(impl.training(x, g, b))
        exact = exact and bool(np.all(y == b.reshape(1, C, 1, 1)))
    out["constant_channel_exactly_beta"] = exact
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print {speed: [...], accuracy: [...]} as JSON")
    ap.add_argument("--quick", action="store_true", help="only the in-cache shape")
    ap.add_argument("--frameworks", default=",".join(FRAMEWORKS), help="comma-separated subset")
    ap.add_argument("--no-speed", action="store_true")
    a = ap.parse_args()
    shapes = [(32, 64, 28, 28)] if a.quick else [(32, 64, 28, 28), (64, 256, 56, 56)]
    speed_rows, acc_rows = [], []
    for name in a.frameworks.split(","):
        if name not in FRAMEWORKS:
            sys.exit(f"bench_frameworks: error: unknown framework '{name}' (expected {', '.join(FRAMEWORKS)})")
        try:
            impl = FRAMEWORKS[name]()
        except Exception as e:  # not installed or failed to start
            print(f"bench_frameworks: skipping {name}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                  file=sys.stderr)
            continue
        acc_rows.append(accuracy(impl))
        if not a.no_speed:
            speed_rows += speed(impl, shapes)
    if a.json:
        print(json.dumps({"speed": speed_rows, "accuracy": acc_rows}, indent=2))
        return
    if speed_rows:
        print(f"{'framework':<12} {'version':<16} {'mode':<10} {'shape':<13} {'median ms':>10} {'memcpy ms':>10} {'x memcpy':>9}")
        for r in speed_rows:
            print(f"{r['kernel']:<12} {r['version'][:16]:<16} {r['mode']:<10} {'x'.join(map(str, r['shape'])):<13} "
                  f"{r['seconds'] * 1e3:>10.3f} {r['memcpy_seconds'] * 1e3:>10.3f} {r['ratio']:>9.2f}")
        print()
    print(f"{'framework':<12} {'normal 8x16x7x7':>16} {'tiny 2x3x1x1':>13} {'offset 1e4':>11} {'constant -> beta':>17}")
    for r in acc_rows:
        print(f"{r['kernel']:<12} {r['normal_8x16x7x7_ulps']:>16.3g} {r['tiny_2x3x1x1_ulps']:>13.3g} {r['offset_1e4_ulps']:>11.3g} "
              f"{'exact' if r['constant_channel_exactly_beta'] else 'NOT exact':>17}")


if __name__ == "__main__":
    main()
