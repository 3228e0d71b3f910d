#!/usr/bin/env python3
"""BNSpec adapter: synchronized BN in Keras 3 on TensorFlow —
`keras.layers.BatchNormalization(synchronized=True)` under `tf.distribute.MirroredStrategy`
over K logical CPU devices (8 are configured at start). Single-device ops are KerasBN's
(tools/adapters/tensorflow_bn.py keras), i.e. the layer without a strategy.

The strategy takes a different batch on every replica
(`experimental_distribute_values_from_function`), so uneven partitions and empty ranks run as
they are. What Keras computes in synchronized mode (keras/src/backend/tensorflow/nn.py,
`_compute_moments_sync`): per replica Σx, Σx² and the count, `replica_ctx.all_reduce(SUM)` of
each, mean = Σx/n, var = max(E[x²] − mean², 0) — a one-pass variance — while the
non-synchronized path is tf.nn.moments (two-pass about the mean).

Gradients: `tf.GradientTape` in each replica gives that replica's gradient (dx through the
all-reduce); gamma/beta gradients are per replica ("local", [K, C]) — Keras leaves their
aggregation to the optimizer —; "global" sums them with the replica context's all_reduce(SUM).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
from tensorflow_bn import DT, KerasBN, as_np, keras, tf  # noqa: E402  (puts the checkout's bnspec package on sys.path)
from bnspec import SYNC_OPS, serve, split_ranks  # noqa: E402

MAX_RANKS = 8
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * MAX_RANKS)


class KerasSyncBN(KerasBN):
    name = "keras-sync"
    supports = dict(KerasBN.supports, ops=KerasBN.supports["ops"] + SYNC_OPS,
                    sync={"max_ranks": MAX_RANKS, "uneven": True, "empty_ranks": True, "grad_reductions": ["local", "global"]})

    def __init__(self):
        self.strategies = {}

    def strategy(self, K):
        if K not in self.strategies:
            self.strategies[K] = tf.distribute.MirroredStrategy(devices=[f"/cpu:{i}" for i in range(K)],
                                                                cross_device_ops=tf.distribute.ReductionToOneDevice())
        return self.strategies[K]

    def sync_layer(self, req, st, x, g, b, rm, rv):
        with st.scope():  # the variables become mirrored
            return self.layer(req, x, g, b, rm, rv, synchronized=True)

    def per_replica(self, req, st, a):
        blocks = [tf.constant(np.asarray(blk, np.float32), dtype=DT[req["dtype"]]) for blk in split_ranks(a, req["partition"])]
        return st.experimental_distribute_values_from_function(lambda ctx: blocks[ctx.replica_id_in_sync_group])

    def sync_train(self, req, x, gamma, beta, running_mean, running_var):
        st = self.strategy(len(req["partition"]))
        lay = self.sync_layer(req, st, x, gamma, beta, running_mean, running_var)
        y = st.run(lambda xx: lay(xx, training=True), args=(self.per_replica(req, st, x),))
        ys = st.experimental_local_results(y)
        return {"y": np.concatenate([as_np(t) for t in ys], axis=0),
                "running_mean": lay.moving_mean.numpy(), "running_var": lay.moving_variance.numpy()}

    def sync_backward(self, req, x, dy, gamma, beta):
        C, red = gamma.size, req["grad_reduction"]
        st = self.strategy(len(req["partition"]))
        lay = self.sync_layer(req, st, x, gamma, beta, np.zeros(C), np.ones(C))

        def step(xx, dyy):
            with tf.GradientTape() as tape:
                tape.watch(xx)
                y = lay(xx, training=True)
            dx, dg, db = tape.gradient(y, [xx, lay.gamma, lay.beta], output_gradients=tf.cast(dyy, y.dtype))
            if red == "global":
                ctx = tf.distribute.get_replica_context()
                dg, db = ctx.all_reduce(tf.distribute.ReduceOp.SUM, dg), ctx.all_reduce(tf.distribute.ReduceOp.SUM, db)
            return dx, dg, db

        dx, dg, db = st.run(step, args=(self.per_replica(req, st, x), self.per_replica(req, st, dy)))
        dxs = np.concatenate([as_np(t) for t in st.experimental_local_results(dx)], axis=0)
        dgs = np.stack([as_np(t) for t in st.experimental_local_results(dg)])
        dbs = np.stack([as_np(t) for t in st.experimental_local_results(db)])
        return {"dx": dxs, "dgamma": dgs[0] if red == "global" else dgs, "dbeta": dbs[0] if red == "global" else dbs}


if __name__ == "__main__":
    serve(KerasSyncBN())
