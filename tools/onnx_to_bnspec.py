#!/usr/bin/env python3
"""Converts ONNX's own BatchNormalization test data into BNSpec's peer format.

Sources (from the `onnx` package on PyPI):
  - backend/test/data/pytorch-converted/test_BatchNorm*  (eval-mode models with data sets)
  - the node test cases, generated from onnx.backend.test.case.node ("BatchNormalization")

Writes spec/peers/onnx/<name>/: x.npy, gamma.npy, beta.npy, mean.npy + var.npy (inference) or
running_mean.npy + running_var.npy (training_mode=1), the ONNX expected outputs as
onnx_<output>.npy, and peer.json (op, eps, momentum, shape, source, onnx version).
`swift test` (PeerDataTests) then checks that BNSpec's reference reproduces every ONNX
output within the float32 tolerance model.

Usage: python3 -m venv /tmp/venv-onnx && /tmp/venv-onnx/bin/pip install onnx numpy
       /tmp/venv-onnx/bin/python tools/onnx_to_bnspec.py
"""
import glob, json, os, shutil, warnings
import numpy as np
import onnx
from onnx import numpy_helper

warnings.filterwarnings("ignore")
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out_dir = os.path.join(root, "spec", "peers", "onnx")
shutil.rmtree(out_dir, ignore_errors=True)


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def write(name, node, inputs, outputs, source):
    a = attrs(node)
    training = int(a.get("training_mode", 0)) == 1
    d = os.path.join(out_dir, name)
    os.makedirs(d)
    x, scale, bias, mean, var = [np.asarray(t, dtype=np.float32) for t in inputs]
    np.save(os.path.join(d, "x.npy"), x)
    np.save(os.path.join(d, "gamma.npy"), scale)
    np.save(os.path.join(d, "beta.npy"), bias)
    np.save(os.path.join(d, "running_mean.npy" if training else "mean.npy"), mean)
    np.save(os.path.join(d, "running_var.npy" if training else "var.npy"), var)
    names = ["y", "running_mean", "running_var"]
    for i, o in enumerate(outputs):
        np.save(os.path.join(d, f"onnx_{names[i]}.npy"), np.asarray(o, dtype=np.float32))
    meta = {"name": name, "op": "train" if training else "infer", "shape": list(x.shape),
            "eps": float(np.float32(a.get("epsilon", 1e-5))), "momentum": float(np.float32(a.get("momentum", 0.9))),
            "outputs": names[:len(outputs)], "source": source, "onnx_version": onnx.__version__}
    json.dump(meta, open(os.path.join(d, "peer.json"), "w"), indent=2, sort_keys=True)


data = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "pytorch-converted")
for case in sorted(glob.glob(os.path.join(data, "test_BatchNorm*"))):
    model = onnx.load(os.path.join(case, "model.onnx"))
    node = [n for n in model.graph.node if n.op_type == "BatchNormalization"][0]
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    ds = os.path.join(case, "test_data_set_0")
    def pb(f):
        t = onnx.TensorProto(); t.ParseFromString(open(f, "rb").read()); return numpy_helper.to_array(t)
    x = pb(os.path.join(ds, "input_0.pb"))
    ins = [x] + [init[n] for n in node.input[1:]]
    write(os.path.basename(case), node, ins, [pb(os.path.join(ds, "output_0.pb"))], "onnx pytorch-converted")

from onnx.backend.test.case import node as node_cases
for tc in node_cases.collect_testcases("BatchNormalization"):
    ins, outs = tc.data_sets[0]
    write(tc.name, tc.model.graph.node[0], ins, outs, "onnx node test (generated)")
print("wrote", len(os.listdir(out_dir)), "cases to", out_dir)
