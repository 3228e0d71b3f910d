"""The adapter base class, the request helpers, handle() and the protocol loop."""
import io
import json

import numpy as np
import pytest

import bnspec
from bnspec import OP_TABLE, Adapter, Op, Request, Unsupported, handle
from bnspec.protocol import serve


class TrainInfer(Adapter):
    def train(self, req, x, gamma, beta, running_mean, running_var):
        self.seen = (req, x, gamma)
        return {"y": x * 2, "running_mean": running_mean + 1, "running_var": running_var}

    def infer(self, req, x, gamma, beta, mean, var):
        return {"y": x + mean.reshape(req.per_channel(mean).shape)}


def test_supported_ops_follow_the_methods_defined():
    assert TrainInfer().capabilities() == {"ops": ["train", "infer", "trajectory", "epoch"], "dtypes": ["float32"],
                                           "layouts": ["NCHW", "NHWC", "NC"], "cumulative": False}

    class OnlyBackward(Adapter):
        dtypes = ["float32", "bfloat16"]

        def backward_train(self, req, x, dy, gamma, beta):
            return {}
    assert OnlyBackward().capabilities()["ops"] == ["backward-train"]
    assert OnlyBackward().capabilities()["dtypes"] == ["float32", "bfloat16"]

    class Declared(TrainInfer):
        supports = {"ops": ["infer"], "dtypes": ["float64"], "layouts": ["NC"], "cumulative": True}
    assert Declared().capabilities() == Declared.supports


def test_request_resolves_conventions():
    r = Request({"shape": [4, 3, 5, 5], "layout": "NHWC", "eps": None, "batch_weight": 0.25, "cumulative": False})
    assert r.axes == (0, 1, 2) and r.n == 100 and r.eps == 1e-5 and r.batch_weight == 0.25 and r.unbiased
    assert r.per_channel(np.arange(3)).shape == (1, 1, 1, 3)
    assert Request({"shape": [4, 3, 5, 5], "layout": "NCHW"}).axes == (0, 2, 3)
    assert Request({"shape": [8, 2], "layout": "NC"}).axes == (0,)
    cum = Request({"cumulative": True, "batch_weight": None}).with_step(4)
    assert cum.batch_weight == 0.25 and isinstance(cum, Request)
    assert Request({"raw_momentum": 0.2, "batch_weight": None}).batch_weight == 0.2
    assert Request({"batch_weight": None}, defaults={"batch_weight": 0.01}).batch_weight == 0.01


def write_case(tmp_path, op="train", dtype="float32", layout="NCHW", shape=(2, 3, 2, 2)):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape)
    inputs = {}
    for name, a in (("x", x), ("gamma", np.ones(3)), ("beta", np.zeros(3)), ("running_mean", np.zeros(3)),
                    ("running_var", np.ones(3)), ("mean", np.arange(3.0)), ("var", np.ones(3))):
        p = str(tmp_path / f"{name}.npy")
        bnspec.save(p, a, dtype if name == "x" else "float32")
        inputs[name] = p
    return {"type": "case", "id": "c1", "op": op, "shape": list(shape), "layout": layout, "dtype": dtype,
            "parameter_dtype": "float32", "eps": 1e-5, "batch_weight": 0.1, "cumulative": False, "steps": 1,
            "inputs": inputs, "outputs": ["y"], "output_dir": str(tmp_path / "out")}, x


def test_handle_loads_inputs_and_saves_outputs_in_storage_dtypes(tmp_path):
    a = TrainInfer()
    a.dtypes = ["bfloat16"]
    req, x = write_case(tmp_path, dtype="bfloat16")
    paths = handle(a, req)
    got_req, got_x, got_gamma = a.seen
    assert isinstance(got_req, Request) and got_x.dtype == np.float32
    assert np.array_equal(got_x, bnspec.round_to(x, "bfloat16").astype(np.float32))  # bit patterns widened
    y = np.load(paths["y"])
    assert y.dtype == np.uint16  # y is stored as bfloat16 bit patterns
    assert np.array_equal(bnspec.from_bfloat16_bits(y), bnspec.round_to(got_x * 2, "bfloat16").astype(np.float32))
    assert np.load(paths["running_mean"]).dtype == np.float32  # parameter dtype


@pytest.mark.parametrize("change,reason", [({"dtype": "float16"}, "dtype float16"), ({"layout": "NHWC"}, "layout NHWC"),
                                           ({"op": "backward-train"}, "op backward-train"),
                                           ({"cumulative": True}, "cumulative running average")])
def test_unsupported_cases_are_skipped(tmp_path, change, reason):
    a = TrainInfer()
    a.layouts = ["NCHW"]
    req, _ = write_case(tmp_path)
    req.update(change)
    with pytest.raises(Unsupported, match=reason):
        handle(a, req)


def test_trajectory_default_runs_train_then_infer(tmp_path):
    req, x = write_case(tmp_path, op="trajectory")
    steps = np.stack([x, x + 1, x + 2])
    bnspec.save(req["inputs"]["x"], steps, "float32")
    bnspec.save(str(tmp_path / "x_eval.npy"), x, "float32")
    req["inputs"]["x_eval"] = str(tmp_path / "x_eval.npy")
    paths = handle(TrainInfer(), req)
    assert np.load(paths["running_mean"]).tolist() == [[1.0] * 3, [2.0] * 3, [3.0] * 3]
    want = x.astype(np.float32) + np.array([3.0, 3.0, 3.0], np.float32).reshape(1, 3, 1, 1)
    assert np.array_equal(np.load(paths["y_eval"]), want)


def test_epoch_default_steps_through_its_batches(tmp_path):
    """An epoch's x is cut along N by the request's partition; each step's request has that batch's shape."""
    class Recording(TrainInfer):
        def train(self, req, x, gamma, beta, running_mean, running_var):
            self.shapes = getattr(self, "shapes", []) + [(req["shape"], req.n, req["step"], x.shape)]
            return super().train(req, x, gamma, beta, running_mean, running_var)
    req, x = write_case(tmp_path, op="epoch", shape=(5, 3, 2, 2))
    req.update(steps=3, partition=[2, 2, 1])
    bnspec.save(str(tmp_path / "x_eval.npy"), x, "float32")
    req["inputs"]["x_eval"] = str(tmp_path / "x_eval.npy")
    a = Recording()
    paths = handle(a, req)
    assert a.shapes == [([2, 3, 2, 2], 8, 1, (2, 3, 2, 2)), ([2, 3, 2, 2], 8, 2, (2, 3, 2, 2)), ([1, 3, 2, 2], 4, 3, (1, 3, 2, 2))]
    assert np.load(paths["running_mean"]).tolist() == [[1.0] * 3, [2.0] * 3, [3.0] * 3]
    for bad in ([2, 2], [2, 2, 2], [5, 0, 0]):
        with pytest.raises(ValueError, match="partition"):
            handle(a, dict(req, partition=bad))


def test_trajectory_default_carries_float64_running_statistics(tmp_path):
    """They were cast to float32 between steps: an honest float64 BN failed every float64 trajectory."""
    class Tiny(TrainInfer):
        dtypes = ["float64"]

        def train(self, req, x, gamma, beta, running_mean, running_var):
            return {"y": x, "running_mean": running_mean + 1e-12, "running_var": running_var}
    req, x = write_case(tmp_path, op="trajectory", dtype="float64")
    req["parameter_dtype"] = "float64"
    for name in ("running_mean", "running_var", "gamma", "beta"):
        bnspec.save(req["inputs"][name], np.load(req["inputs"][name]).astype(np.float64), "float64")
    steps = np.stack([x, x, x])
    bnspec.save(req["inputs"]["x"], steps, "float64")
    bnspec.save(str(tmp_path / "x_eval.npy"), x, "float64")
    req["inputs"]["x_eval"] = str(tmp_path / "x_eval.npy")
    paths = handle(Tiny(), req)
    rm = np.load(paths["running_mean"])
    assert rm.dtype == np.float64 and np.allclose(rm[:, 0], [1e-12, 2e-12, 3e-12], rtol=1e-12, atol=0)


def test_a_new_op_is_one_table_entry(tmp_path, monkeypatch):
    class Doubler(TrainInfer):
        def double_x(self, req, x, gamma):
            return {"y": 2 * x * gamma.reshape(1, 3, 1, 1)}
    monkeypatch.setitem(OP_TABLE, "double", Op("double_x", ("x", "gamma")))
    assert "double" in Doubler().capabilities()["ops"] and "double" not in TrainInfer().capabilities()["ops"]
    req, x = write_case(tmp_path, op="double")
    assert np.array_equal(np.load(handle(Doubler(), req)["y"]), (2 * x).astype(np.float32))


def converse(adapter, *requests):
    out = io.StringIO()
    serve(adapter, stdin=io.StringIO("".join(json.dumps(r) + "\n" if isinstance(r, dict) else r for r in requests)), stdout=out)
    return [json.loads(l) for l in out.getvalue().splitlines()]


def test_protocol_answers_hello_cases_refusals_and_garbage(tmp_path):
    class Refuser(TrainInfer):
        def infer(self, req, x, gamma, beta, mean, var):
            print("framework chatter")  # must not reach the protocol stream
            raise ValueError("Expected more than 1 value per channel")
    req, _ = write_case(tmp_path)
    ireq = dict(req, id="c2", op="infer")
    breq = dict(req, id="c3", op="backward-infer")
    answers = converse(Refuser(), {"type": "hello", "protocol": "bnspec-adapter/1"}, req, ireq, breq, "not json\n",
                       {"type": "bye"}, {"type": "hello"})
    assert [a["type"] for a in answers] == ["hello", "result", "error", "unsupported", "error"]  # nothing after bye
    assert answers[0]["protocol"] == "bnspec-adapter/1" and answers[0]["name"] == "Refuser"
    assert answers[2]["id"] == "c2" and answers[2]["message"] == "ValueError: Expected more than 1 value per channel"
    assert answers[3]["message"] == "op backward-infer"
    assert answers[4]["id"] is None and answers[4]["message"].startswith("bad request")


def test_serve_target_builds_classes_with_arguments(tmp_path):
    from bnspec.target import TargetError, build, describe
    mod = tmp_path / "user_bn.py"
    mod.write_text("import bnspec\nclass BN(bnspec.Adapter):\n    def __init__(self, k='1'):\n        self.version = k\n"
                   "inst = BN('9')\nnot_adapter = dict\n")
    assert build(f"{mod}:BN", ["3"]).version == "3"
    assert build(f"{mod}:inst").version == "9"
    with pytest.raises(TargetError, match="not a bnspec.Adapter"):
        build(f"{mod}:not_adapter")
    with pytest.raises(TargetError, match="no attribute"):
        build(f"{mod}:Missing")
    assert describe(TrainInfer).endswith("test_adapter.py:TrainInfer")


class Synced(Adapter):
    """Synchronized BN from the table: the ranks' tensors are seen as blocks, dgamma/dbeta rows returned."""
    sync = {"max_ranks": 4, "uneven": True, "empty_ranks": False, "grad_reductions": ["local", "global"]}

    def sync_train(self, req, x, gamma, beta, running_mean, running_var):
        self.blocks = [b.shape[0] for b in req.split(x)]
        return {"y": x, "running_mean": running_mean, "running_var": running_var}

    def sync_backward(self, req, x, dy, gamma, beta):
        C = gamma.size
        rows = np.ones((req.ranks, C)) if req.grad_reduction == "local" else np.ones(C)
        return {"dx": dy, "dgamma": rows if not getattr(self, "wrong", False) else np.ones(C + 1), "dbeta": rows}


def sync_case(tmp_path, op="sync-train", partition=(1, 3), **extra):
    req, x = write_case(tmp_path, op=op, shape=(4, 3, 2, 2))
    bnspec.save(str(tmp_path / "dy.npy"), x, "float32")
    req["inputs"]["dy"] = str(tmp_path / "dy.npy")
    req.update(partition=list(partition), **extra)
    return req


def test_sync_ops_are_table_entries_with_their_capabilities(tmp_path):
    caps = Synced().capabilities()
    assert caps["ops"] == ["sync-train", "sync-backward"] and caps["sync"] == Synced.sync
    assert "sync" not in TrainInfer().capabilities()  # no sync op, no sync capabilities
    a = Synced()
    handle(a, sync_case(tmp_path))
    assert a.blocks == [1, 3]
    paths = handle(a, sync_case(tmp_path, "sync-backward", (2, 2), grad_reduction="local"))
    assert np.load(paths["dgamma"]).shape == (2, 3)
    assert np.load(handle(a, sync_case(tmp_path, "sync-backward", (2, 2), grad_reduction="global"))["dbeta"]).shape == (3,)
    assert bnspec.split_ranks(np.arange(8), [3, 0, 5])[1].size == 0


@pytest.mark.parametrize("change,error", [
    ({"partition": [1, 2]}, (ValueError, "holds 3 samples but x has 4")),
    ({"partition": [4, -1, 1]}, (ValueError, "sample counts ≥ 0")),
    ({"partition": "2+2"}, (ValueError, "non-empty list")),
    ({"partition": [1, 1, 1, 1, 0]}, (Unsupported, "5 ranks")),
    ({"partition": [2, 0, 2]}, (Unsupported, "empty rank")),
    ({"op": "sync-backward", "grad_reduction": "sum"}, (ValueError, "grad_reduction must be one of local, global")),
])
def test_sync_requests_are_checked_before_the_method(tmp_path, change, error):
    req = sync_case(tmp_path)
    req.update(change)
    with pytest.raises(error[0], match=error[1]):
        handle(Synced(), req)


def test_sync_outputs_of_the_wrong_extent_are_an_error(tmp_path):
    a = Synced()
    a.wrong = True
    with pytest.raises(ValueError, match=r"dgamma of shape \(4,\), expected \(2, 3\)"):
        handle(a, sync_case(tmp_path, "sync-backward", (2, 2), grad_reduction="local"))
