"""The protocol loop of `bnspec-adapter/1` (spec/AUDIT.md §3): JSON lines in on stdin, one
JSON line out per request on stdout. Anything else the implementation prints goes to stderr."""
from __future__ import annotations

import json
import sys
import traceback

from .adapter import Adapter, Unsupported, handle


def reply(adapter: Adapter, line: str):
    """The answer to one request line, or None for bye."""
    try:
        req = json.loads(line)
    except json.JSONDecodeError as e:
        return {"type": "error", "id": None, "message": f"bad request: {e}"}
    kind = req.get("type") if isinstance(req, dict) else None
    if kind == "hello":
        return {"type": "hello", "protocol": adapter.protocol, "name": adapter.display_name(), "version": str(adapter.version),
                "supports": adapter.capabilities()}
    if kind == "bye":
        return None
    if kind == "case":
        try:
            return {"type": "result", "id": req["id"], "outputs": handle(adapter, req)}
        except Unsupported as e:
            return {"type": "unsupported", "id": req["id"], "message": str(e)}
        except Exception as e:  # the implementation refused or failed on this case
            return {"type": "error", "id": req.get("id"), "message": f"{type(e).__name__}: {e}".splitlines()[0][:500],
                    "trace": traceback.format_exc()[-2000:]}
    return {"type": "error", "id": req.get("id") if isinstance(req, dict) else None, "message": f"unknown request type {kind!r}"}


def serve(adapter: Adapter, stdin=None, stdout=None) -> None:
    """Answers requests until bye or end of input. stdout is reserved for protocol lines:
    while serving, sys.stdout points at stderr so a framework's prints cannot corrupt it."""
    out = stdout or sys.stdout
    saved = sys.stdout
    sys.stdout = sys.stderr
    try:
        for line in stdin or sys.stdin:
            line = line.strip()
            if not line:
                continue
            answer = reply(adapter, line)
            if answer is None:
                break
            out.write(json.dumps(answer) + "\n")
            out.flush()
    finally:
        sys.stdout = saved
