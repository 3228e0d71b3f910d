"""Preloaded by the fork server of torch_gloo_bn.py (`set_forkserver_preload`), before torch: the
server gets SIGKILL when the adapter dies (PR_SET_PDEATHSIG), however it dies, and its workers
die with the server (their own PR_SET_PDEATHSIG). Without it a server orphaned by `kill -9` of
the adapter (or by `bnspec audit` killing a hung adapter) lingers until its workers' collectives
time out, holding the adapter's stdout open. Linux only; elsewhere nothing happens."""
import ctypes
import os
import signal

try:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the adapter died before the prctl
        os._exit(1)
except (OSError, AttributeError):
    pass
