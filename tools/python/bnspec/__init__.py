"""BNSpec from Python: write the batch normalization under test as a `bnspec.Adapter`, audit it
with `bnspec.audit(...)` or under pytest (one test per golden case), and check outputs against
golden vectors with NumPy alone (`bnspec.check`). See tools/python/README.md."""
from .adapter import (DATA_ARRAYS, GRAD_REDUCTIONS, HIGHER_ORDER_OPS, LAYOUTS, OP_TABLE, OPS, PROTOCOL, SYNC_OPS, Adapter, Op,
                      Refused, Request, Unsupported, channel_axis, handle, param_shape, reduce_axes, split_ranks)
from .arrays import bfloat16_bits, from_bfloat16_bits, load, round_to, save
from .checker import CheckResult, GoldenError, OutputCheck, check, check_output, check_results, read_allowed
from .files import run_requests
from .protocol import serve
from .report import AuditReport, CaseResult
from .runner import AuditError, audit, find_binary

__version__ = "0.1.0"
__all__ = ["Adapter", "Request", "Unsupported", "Refused", "Op", "OP_TABLE", "OPS", "SYNC_OPS", "GRAD_REDUCTIONS", "HIGHER_ORDER_OPS",
           "LAYOUTS", "PROTOCOL", "DATA_ARRAYS", "handle", "serve", "split_ranks", "channel_axis", "reduce_axes", "param_shape", "load",
           "save", "round_to", "bfloat16_bits",
           "from_bfloat16_bits", "audit", "find_binary", "AuditError", "AuditReport", "CaseResult", "check",
           "check_output", "check_results", "CheckResult", "OutputCheck", "GoldenError", "read_allowed", "run_requests"]
