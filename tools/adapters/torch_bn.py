#!/usr/bin/env python3
"""BNSpec adapter: PyTorch CPU, torch.nn.functional.batch_norm (what nn.BatchNorm*d calls),
with PyTorch's defaults unless the request sets eps / momentum. NHWC is permuted to NCHW."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))  # the checkout's bnspec package
import numpy as np  # noqa: E402
import torch  # noqa: E402
from bnspec import OPS, Adapter, serve  # noqa: E402

torch.set_num_threads(1)
DT = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}


def to_nc(x, layout):
    t = torch.from_numpy(np.ascontiguousarray(x))
    return t.movedim(-1, 1) if layout == "NHWC" else t


def from_nc(t, layout):
    t = t.movedim(1, -1) if layout == "NHWC" else t
    return t.detach().double().numpy()


class TorchBN(Adapter):
    name = "torch"
    version = torch.__version__
    supports = {"ops": OPS, "dtypes": ["float32", "float16", "bfloat16", "float64"], "layouts": ["NCHW", "NHWC", "NC"],
                "cumulative": True}

    def kw(self, req):
        k = {}
        if req.get("eps") is not None:
            k["eps"] = req["eps"]
        if req.get("raw_momentum") is not None:
            k["momentum"] = req["raw_momentum"]
        elif req.get("cumulative"):
            k["momentum"] = None
        elif req.get("batch_weight") is not None:
            k["momentum"] = req["batch_weight"]  # PyTorch's momentum weights the batch
        return k

    def params(self, req, *arrays):
        """Parameters and running statistics: float64 for float64 cases, else float32
        (PyTorch's CPU kernels take float16/bfloat16 input with float32 parameters)."""
        pt = np.float64 if req["dtype"] == "float64" else np.float32
        return [torch.from_numpy(np.array(a, pt)) for a in arrays]

    def run_train(self, req, x, g, b, rm, rv, step=1):
        dt = DT[req["dtype"]]
        xt = to_nc(x, req["layout"]).to(dt)
        g, b, rm, rv = self.params(req, g, b, rm, rv)
        k = self.kw(req)
        if k.get("momentum", 0.1) is None:
            # nn.BatchNorm with momentum=None uses 1/num_batches_tracked; F.batch_norm takes the factor.
            k["momentum"] = 1.0 / step
        y = torch.nn.functional.batch_norm(xt, rm, rv, g, b, True, **k)
        return y, rm, rv

    def train(self, req, x, gamma, beta, running_mean, running_var):
        # F.batch_norm does not return the batch statistics; only what it returns is judged.
        y, rm, rv = self.run_train(req, x, gamma, beta, running_mean, running_var, req.get("step", 1))
        return {"y": from_nc(y, req["layout"]), "running_mean": rm.numpy(), "running_var": rv.numpy()}

    def trajectory(self, req, xs, x_eval, gamma, beta, running_mean, running_var):
        rm, rv, ms, vs = running_mean, running_var, [], []
        for k, x in enumerate(xs):
            _, rmt, rvt = self.run_train(req, x, gamma, beta, rm, rv, k + 1)
            rm, rv = rmt.numpy(), rvt.numpy()
            ms.append(rm); vs.append(rv)
        return {"running_mean": np.stack(ms), "running_var": np.stack(vs),
                "y_eval": self.infer(req, x_eval, gamma, beta, rm, rv)["y"]}

    def infer(self, req, x, gamma, beta, mean, var):
        dt = DT[req["dtype"]]
        xt = to_nc(x, req["layout"]).to(dt)
        g, b, m, v = self.params(req, gamma, beta, mean, var)
        k = {"eps": req["eps"]} if req.get("eps") is not None else {}
        return {"y": from_nc(torch.nn.functional.batch_norm(xt, m, v, g, b, False, **k), req["layout"])}

    def grads(self, req, x, dy, gamma, beta, training, mean=None, var=None):
        dt = DT[req["dtype"]]
        xt = to_nc(x, req["layout"]).to(dt).requires_grad_(True)
        dyt = to_nc(dy, req["layout"]).to(dt)
        g, b = self.params(req, gamma, beta)
        g.requires_grad_(True); b.requires_grad_(True)
        gg, bb = g, b
        k = {"eps": req["eps"]} if req.get("eps") is not None else {}
        if training:
            y = torch.nn.functional.batch_norm(xt, None, None, gg, bb, True, **k)
        else:
            m, v = self.params(req, mean, var)
            y = torch.nn.functional.batch_norm(xt, m.to(gg.dtype), v.to(gg.dtype), gg, bb, False, **k)
        y.backward(dyt)
        return {"dx": from_nc(xt.grad, req["layout"]), "dgamma": g.grad.double().numpy(), "dbeta": b.grad.double().numpy()}

    def backward_train(self, req, x, dy, gamma, beta):
        return self.grads(req, x, dy, gamma, beta, True)

    def backward_infer(self, req, x, dy, gamma, beta, mean, var):
        return self.grads(req, x, dy, gamma, beta, False, mean, var)


if __name__ == "__main__":
    serve(TorchBN())
