#!/usr/bin/env python3
"""BNSpec adapter: synchronized BN with PyTorch over torch.distributed's gloo backend — K real
processes on 127.0.0.1, real collectives (all_gather, all_reduce), CPU only.

    torch_gloo_bn.py torch       torch's SyncBatchNorm algorithm (torch/nn/modules/_functions.py)
    torch_gloo_bn.py allreduce   an honest all-reduce of shifted sums

`nn.SyncBatchNorm` refuses CPU tensors and its kernels (batch_norm_stats,
batch_norm_gather_stats_with_counts, batch_norm_elemt, batch_norm_backward_reduce/elemt) are
CUDA-only, so the `torch` flavour runs torch's own Python algorithm with those kernels replaced:
- per-rank mean and invstd: torch's CPU `native_batch_norm` (its save_mean, save_invstd are the
  quantities batch_norm_stats returns on CUDA; the CPU kernel computes them, in its own order);
- the gather: [mean, invstd, count] per rank, `dist.all_gather` over gloo, ranks with count 0
  removed — as SyncBatchNorm.forward does;
- the merge: batch_norm_reduce_statistics_kernel (aten/src/ATen/native/cuda/Normalization.cuh)
  re-implemented operation by operation in float32 (float64 for float64 input): per rank
  v = 1/invstd, v = (v·v − eps)·count — v·v − eps with one rounding, the FMA nvcc contracts it
  to by default —, factor = 1/(n + count), var_n += v + (avg − m)²·n·count·factor,
  avg = n·factor·avg + count·factor·m; then invstd = 1/√(var_n/n + eps), running_mean and
  running_var (unbiased, var_n/(n − 1), global n) with momentum weighting the batch;
- y = γ·(x − mean)·invstd + β (batch_norm_transform_input_kernel's order);
- backward: local Σdy and Σdy·(x − mean) (batch_norm_backward_reduce), `dist.all_reduce`
  (SUM) of both, dx = (dy − Σdy/n − (x − mean)·invstd²·Σdy·(x − mean)/n)·γ·invstd
  (batch_norm_backward_elemt); dγ = Σdy·(x − mean)·invstd and dβ = Σdy stay local, as torch
  leaves them to data parallelism ("global": a further all_reduce SUM of both).
With K = 1 SyncBatchNorm falls back to F.batch_norm, and so does this flavour.

The `allreduce` flavour (honest): round 1 all-reduces Σx and the count, giving μ₀; round 2
all-reduces Σ(x − μ₀) and Σ(x − μ₀)²: μ = μ₀ + s/n, M2 = q − s²/n (the distributed two-pass,
spec §11.4). It follows the request's conventions (batch weight, running-variance estimator,
single-value policy; PyTorch's defaults otherwise), like tools/adapters/numpy_bn.py.

Processes: a pool of W worker processes (W = the largest K asked so far; it is restarted larger
when needed), forked from a `forkserver` that imports torch once, each in one gloo process group on 127.0.0.1
(GLOO_SOCKET_IFNAME=lo) with a subgroup for every K ≤ W. Workers die with the adapter
(PR_SET_PDEATHSIG — their parent is the fork server, which the adapter kills and waits for when
it is done, and which gets SIGKILL if the adapter dies, `_pdeathsig.py` —, and EOF on their pipe); collectives time out after 60 s; a case that does not
finish in 120 s kills the pool (restarted for the next case).
"""
import ctypes
import datetime
import os
import signal
import socket
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
from torch_bn import TorchBN  # noqa: E402  (puts the checkout's bnspec package on sys.path)
from bnspec import SYNC_OPS, serve, split_ranks  # noqa: E402

import torch  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

FLAVOURS = ["torch", "allreduce"]
CASE_TIMEOUT = 120.0
COLLECTIVE_TIMEOUT = 60.0


# ---------------------------------------------------------------- worker side (one per rank)

def _die_with_parent():
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _worker(rank, world, port, conn):
    _die_with_parent()
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    import torch.distributed as dist
    torch.set_num_threads(1)
    try:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=COLLECTIVE_TIMEOUT))
        groups = {k: dist.new_group(list(range(k))) for k in range(1, world + 1)}
        conn.send(("ready", rank))
    except Exception as e:  # noqa: BLE001
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            break
        if task is None:
            break
        try:
            conn.send(("ok", _run(task, rank, groups[task["K"]])))
        except Exception as e:  # noqa: BLE001
            conn.send(("error", f"{type(e).__name__}: {e}".splitlines()[0][:300] + "\n" + traceback.format_exc()[-1500:]))
    # No destroy_process_group(): it waits on the peers; exiting closes the sockets.


def _fma(a, b, c):
    """fl(a·b + c) with one rounding for float32 tensors: the product is exact in float64."""
    if a.dtype == torch.float64:
        return a * b + c  # no wider type; float64 cases are not used for the round-trip finding
    return (a.double() * b.double() + c.double()).to(a.dtype)


def _gather_stats_with_counts(mean_all, invstd_all, counts, eps, momentum, rm, rv):
    """batch_norm_reduce_statistics_kernel, per channel, vectorised over channels."""
    dt = mean_all.dtype
    C = mean_all.shape[1]
    avg = torch.zeros(C, dtype=dt)
    var_n = torch.zeros(C, dtype=dt)
    n = 0
    eps_t = torch.tensor(eps, dtype=dt)
    for j in range(mean_all.shape[0]):
        count = counts[j].to(dt)
        m = mean_all[j]
        v = torch.tensor(1.0, dtype=dt) / invstd_all[j]
        v = _fma(v, v, -eps_t.expand_as(v)) * count
        factor = torch.tensor(1.0 / float((torch.tensor(float(n), dtype=dt) + count).item()), dtype=dt)
        nf = torch.tensor(float(n), dtype=dt)
        var_n = var_n + (v + (avg - m) * (avg - m) * nf * count * factor)
        avg = nf * factor * avg + count * factor * m
        n += int(count.item())
    invstd = torch.tensor(1.0, dtype=dt) / torch.sqrt(var_n / torch.tensor(float(n), dtype=dt) + eps_t)
    mom = torch.tensor(momentum, dtype=dt)
    one = torch.tensor(1.0, dtype=dt)
    rm = ((one - mom) * rm.to(dt) + mom * avg).to(rm.dtype)
    unbiased = var_n / torch.tensor(float(n - 1), dtype=dt)
    rv = ((one - mom) * rv.to(dt) + mom * unbiased).to(rv.dtype)
    return avg, invstd, rm, rv, var_n / torch.tensor(float(n), dtype=dt)


def _run(task, rank, group):
    import torch.distributed as dist
    K, flavour = task["K"], task["flavour"]
    dt = torch.float64 if task["dtype"] == "float64" else torch.float32
    x = torch.from_numpy(task["x"][rank]).to(dt)  # (n_k, C, *) channel-second
    C = task["C"]
    g = torch.from_numpy(task["gamma"]).to(dt)
    b = torch.from_numpy(task["beta"]).to(dt)
    rm = torch.from_numpy(task["running_mean"]).to(dt)
    rv = torch.from_numpy(task["running_var"]).to(dt)
    eps = task["eps"]
    bshape = [1, C] + [1] * (x.dim() - 2)
    dims = [0] + list(range(2, x.dim()))
    nk = x.numel() // C
    out = {}

    if flavour == "torch" and K == 1:
        # SyncBatchNorm without a second process: F.batch_norm (refuses one value per channel),
        # on the input in its storage dtype with float32 parameters, as nn.BatchNorm runs it.
        sdt = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(task["dtype"], dt)
        xx = x.to(sdt).requires_grad_(task["op"] == "sync-backward")
        gg, bb = g.clone().requires_grad_(True), b.clone().requires_grad_(True)
        y = torch.nn.functional.batch_norm(xx, rm, rv, gg, bb, True, task["momentum"], eps)
        out.update(running_mean=rm.numpy(), running_var=rv.numpy())
        if task["op"] == "sync-backward":
            y.backward(torch.from_numpy(task["dy"][rank]).to(sdt))
            out.update(dx=xx.grad.double().numpy(), dgamma=gg.grad.numpy(), dbeta=bb.grad.numpy())
        out["y"] = y.detach().double().numpy()
        return out

    if flavour == "torch":
        if nk == 1 and K < 2:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {nk}")
        if nk > 0:
            _, mean_k, invstd_k = torch.native_batch_norm(x, None, None, None, None, True, 0.0, eps)
            combined = torch.cat([mean_k.to(dt), invstd_k.to(dt), torch.full((1,), float(nk), dtype=dt)])
        else:
            combined = torch.zeros(2 * C + 1, dtype=dt)
        parts = [torch.empty_like(combined) for _ in range(K)]
        dist.all_gather(parts, combined, group=group)
        allc = torch.stack(parts)
        mean_all, invstd_all, count_all = allc[:, :C], allc[:, C:2 * C], allc[:, 2 * C:]
        keep = count_all.squeeze(-1) >= 1
        mean_all, invstd_all, count_all = mean_all[keep], invstd_all[keep], count_all[keep]
        mean, invstd, rm, rv, var = _gather_stats_with_counts(mean_all, invstd_all, count_all.view(-1), eps,
                                                              task["momentum"], rm, rv)
        total = int(count_all.sum().item())
    else:  # honest all-reduce of shifted sums, two rounds
        s1 = x.sum(dim=dims) if nk else torch.zeros(C, dtype=dt)
        cnt = torch.tensor([float(nk)], dtype=torch.float64)
        dist.all_reduce(s1, group=group)
        dist.all_reduce(cnt, group=group)
        total = int(cnt.item())
        mu0 = s1 / torch.tensor(float(total), dtype=dt)
        d = x - mu0.view(bshape)
        sq = torch.cat([d.sum(dim=dims), (d * d).sum(dim=dims)]) if nk else torch.zeros(2 * C, dtype=dt)
        dist.all_reduce(sq, group=group)
        s, q = sq[:C], sq[C:]
        nt = torch.tensor(float(total), dtype=dt)
        mean = mu0 + s / nt
        M2 = torch.clamp(q - s * s / nt, min=0)
        var = M2 / nt
        invstd = torch.tensor(1.0, dtype=dt) / torch.sqrt(var + torch.tensor(eps, dtype=dt))
        if total == 1 and task["estimator"] == "unbiased":
            if task["single_value"] == "error":
                raise ValueError("Expected more than 1 value per channel when training")
            vr = var if task["single_value"] == "beta" else torch.full_like(var, float("nan"))
        else:
            vr = M2 / torch.tensor(float(total - 1), dtype=dt) if task["estimator"] == "unbiased" else var
        w = torch.tensor(task["momentum"], dtype=dt)
        rm = (torch.tensor(1.0, dtype=dt) - w) * rm + w * mean
        rv = (torch.tensor(1.0, dtype=dt) - w) * rv + w * vr

    y = g.view(bshape) * (x - mean.view(bshape)) * invstd.view(bshape) + b.view(bshape)
    out.update(y=y.numpy(), running_mean=rm.numpy(), running_var=rv.numpy(), batch_mean=mean.numpy(), batch_var=var.numpy())
    if task["op"] != "sync-backward":
        return out

    dy = torch.from_numpy(task["dy"][rank]).to(dt)
    xmu = x - mean.view(bshape)
    if nk:
        sum_dy, sum_dy_xmu = dy.sum(dim=dims), (dy * xmu).sum(dim=dims)
    else:
        sum_dy, sum_dy_xmu = torch.zeros(C, dtype=dt), torch.zeros(C, dtype=dt)
    dgamma, dbeta = sum_dy_xmu * invstd, sum_dy.clone()
    combined = torch.cat([sum_dy, sum_dy_xmu])
    dist.all_reduce(combined, group=group)
    sum_dy, sum_dy_xmu = combined[:C], combined[C:]
    norm = torch.tensor(1.0, dtype=dt) / torch.tensor(float(total), dtype=dt)
    m_dy = sum_dy * norm
    f1 = invstd * invstd * sum_dy_xmu * norm
    f2 = g * invstd
    dx = (dy - m_dy.view(bshape) - xmu * f1.view(bshape)) * f2.view(bshape)
    if task["grad_reduction"] == "global":
        gb = torch.cat([dgamma, dbeta])
        dist.all_reduce(gb, group=group)
        dgamma, dbeta = gb[:C], gb[C:]
    out.update(dx=dx.numpy(), dgamma=dgamma.numpy(), dbeta=dbeta.numpy())
    return out


# ---------------------------------------------------------------- adapter side

def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pool:
    """W gloo worker processes; `run(K, tasks)` gives rank r < K its task and collects the answers."""

    def __init__(self, world):
        self.world = world
        ctx = mp.get_context("forkserver")  # torch is imported once, in the fork server
        # _pdeathsig: the server dies with the adapter. The server's sys.path is its environment's
        # (Python 3.11 ignores the sys_path multiprocessing passes it), so this folder goes on PYTHONPATH.
        here = os.path.dirname(os.path.abspath(__file__))
        if here not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
        ctx.set_forkserver_preload(["_pdeathsig", "torch", "numpy"])
        port = _free_port()
        self.procs, self.conns = [], []
        for r in range(world):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(r, world, port, child), daemon=True)
            p.start()
            child.close()
            self.procs.append(p)
            self.conns.append(parent)
        for r in range(world):
            kind, msg = self._recv(r, CASE_TIMEOUT)
            if kind != "ready":
                self.close()
                raise RuntimeError(f"gloo worker {r} did not start: {msg}")

    def _recv(self, r, timeout):
        if not self.conns[r].poll(timeout):
            raise TimeoutError(f"gloo rank {r} gave no answer in {timeout:.0f} s")
        try:
            return self.conns[r].recv()
        except EOFError:
            raise RuntimeError(f"gloo rank {r} died (exit code {self.procs[r].exitcode})") from None

    def run(self, K, tasks):
        for r in range(K):
            self.conns[r].send(tasks[r])
        deadline = time.monotonic() + CASE_TIMEOUT
        results, errors = [], []
        for r in range(K):
            kind, msg = self._recv(r, max(0.1, deadline - time.monotonic()))
            (results if kind == "ok" else errors).append(msg)
        if errors:
            raise RuntimeError(errors[0])
        return results

    def close(self):
        for c in self.conns:
            try:
                c.send(None)
            except (OSError, BrokenPipeError):
                pass
        for p in self.procs:
            p.join(5)
        for p in self.procs:
            if p.is_alive():
                p.kill()
                p.join(5)
        for c in self.conns:
            c.close()
        self.procs, self.conns = [], []


class TorchGlooBN(TorchBN):
    supports = dict(TorchBN.supports, ops=TorchBN.supports["ops"] + SYNC_OPS,
                    sync={"max_ranks": 8, "uneven": True, "empty_ranks": True, "grad_reductions": ["local", "global"]})

    def __init__(self, flavour):
        self.flavour = flavour
        self.name = f"torch-gloo:{flavour}"
        self.pool = None

    def pool_for(self, K):
        if self.pool is None or self.pool.world < K:
            if self.pool is not None:
                self.pool.close()
            self.pool = Pool(K)
        return self.pool

    def momentum(self, req):
        if req.get("raw_momentum") is not None:
            return req["raw_momentum"]
        if req.get("cumulative"):
            return 1.0 / req.get("step", 1)
        w = req.get("batch_weight")
        return 0.1 if w is None else w

    def run_sync(self, req, x, dy, gamma, beta, running_mean, running_var):
        part = req["partition"]
        K = len(part)
        to_nc = (lambda a: np.ascontiguousarray(np.moveaxis(a, -1, 1))) if req["layout"] == "NHWC" else np.ascontiguousarray
        xs = [to_nc(a.astype(np.float64)) for a in split_ranks(x, part)]
        dys = [to_nc(a.astype(np.float64)) for a in split_ranks(dy, part)] if dy is not None else None
        est = req.get("variance_estimator") or "unbiased"
        task = {"K": K, "flavour": self.flavour, "op": req["op"], "dtype": req["dtype"], "C": gamma.size, "x": xs, "dy": dys,
                "gamma": np.asarray(gamma, np.float64), "beta": np.asarray(beta, np.float64),
                "running_mean": np.asarray(running_mean if running_mean is not None else np.zeros(gamma.size), np.float64),
                "running_var": np.asarray(running_var if running_var is not None else np.ones(gamma.size), np.float64),
                "eps": 1e-5 if req.get("eps") is None else req["eps"], "momentum": self.momentum(req),
                "estimator": est, "single_value": req.get("single_value") or "error",
                "grad_reduction": req.get("grad_reduction", "local")}
        try:
            res = self.pool_for(K).run(K, [task] * K)
        except (TimeoutError, RuntimeError):
            if self.pool is not None:
                self.pool.close()
                self.pool = None
            raise
        back = (lambda a: np.moveaxis(a, 1, -1)) if req["layout"] == "NHWC" else (lambda a: a)
        out = {}
        for name in ("y", "dx"):
            if name in res[0]:
                out[name] = np.concatenate([back(r[name]) for r in res], axis=0)
        for name in ("running_mean", "running_var", "batch_mean", "batch_var"):
            if name in res[0]:
                vals = [r[name] for r in res]
                if any(not np.array_equal(vals[0], v, equal_nan=True) for v in vals):
                    print(f"torch-gloo: ranks disagree on {name}", file=sys.stderr)
                out[name] = vals[0]
        if "dgamma" in res[0]:
            if req["grad_reduction"] == "global":
                out["dgamma"], out["dbeta"] = res[0]["dgamma"], res[0]["dbeta"]
            else:
                out["dgamma"] = np.stack([r["dgamma"] for r in res])
                out["dbeta"] = np.stack([r["dbeta"] for r in res])
        return out

    def sync_train(self, req, x, gamma, beta, running_mean, running_var):
        out = self.run_sync(req, x, None, gamma, beta, running_mean, running_var)
        return {k: v for k, v in out.items() if self.flavour == "allreduce" or k not in ("batch_mean", "batch_var")}

    def sync_backward(self, req, x, dy, gamma, beta):
        out = self.run_sync(req, x, dy, gamma, beta, None, None)
        return {k: out[k] for k in ("dx", "dgamma", "dbeta")}


def stop_forkserver():
    """Kills the fork server and waits for it; the pool's workers die with it (PR_SET_PDEATHSIG).
    Run when the adapter is done, so that no process outlives it: on its own the server exits on
    EOF of its "alive" pipe once the adapter has gone, but torch's teardown keeps it a few seconds
    more (and `bnspec audit` gives an adapter 1 s to exit). The pid is multiprocessing's
    ForkServer field (its own `_stop` closes the pipe and waits without a limit)."""
    from multiprocessing import forkserver
    fs = getattr(forkserver, "_forkserver", None)
    pid = getattr(fs, "_forkserver_pid", None)
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
    fs._forkserver_pid = None


if __name__ == "__main__":
    flavour = sys.argv[1] if len(sys.argv) > 1 else "torch"
    if flavour not in FLAVOURS:
        sys.exit(f"torch_gloo_bn: error: flavour must be one of {', '.join(FLAVOURS)}")
    adapter = TorchGlooBN(flavour)
    try:
        serve(adapter)
    finally:
        stop_forkserver()  # first: the workers go with it, and the pool's close then has no one to wait for
        if adapter.pool is not None:
            adapter.pool.close()
