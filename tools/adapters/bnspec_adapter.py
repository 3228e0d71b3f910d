"""Compatibility shim: the adapter protocol now lives in the `bnspec` Python package
(tools/python/bnspec; `pip install ./tools/python`). This module re-exports it for adapters
written against `from bnspec_adapter import Adapter, serve`; new code imports `bnspec`.

A new protocol operation is one entry in bnspec.adapter.OP_TABLE (op name → method and input
names), not a branch here."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))  # this checkout's package
from bnspec.adapter import (DATA_ARRAYS, GRAD_REDUCTIONS, HIGHER_ORDER_OPS, OP_TABLE, OPS, PROTOCOL, SYNC_OPS, Adapter,  # noqa: E402,F401
                            Op, Refused, Request, Unsupported, channel_axis, handle, param_shape, reduce_axes, split_ranks)
from bnspec.arrays import load, save  # noqa: E402,F401
from bnspec.protocol import serve  # noqa: E402,F401
