"""Arrays as BNSpec stores them: NPY files, bfloat16 as uint16 bit patterns, rounding to a
storage dtype (the rounding `bnspec` applies before it judges an output).

bfloat16 is RNE(float32(x)) — two specified roundings, as in Sources/BNCore/DType.swift."""
from __future__ import annotations

import os

import numpy as np

#: Storage dtypes by the names the protocol and golden/ use.
DTYPES = ("float16", "bfloat16", "float32", "float64")


def bfloat16_bits(a) -> np.ndarray:
    """bfloat16 bit patterns (uint16) of `a`: rounded to float32, then to bfloat16, ties to
    even; a NaN becomes the quiet NaN 0x7FC0."""
    f = np.asarray(a).astype(np.float32)
    b = f.view(np.uint32)
    with np.errstate(over="ignore"):
        rounded = ((b + np.uint32(0x7FFF) + ((b >> 16) & np.uint32(1))) >> 16).astype(np.uint16)
    return np.where(np.isnan(f), np.uint16(0x7FC0), rounded)


def from_bfloat16_bits(bits) -> np.ndarray:
    """float32 values of bfloat16 bit patterns (exact)."""
    return (np.asarray(bits).astype(np.uint32) << 16).view(np.float32)


def round_to(a, dtype: str) -> np.ndarray:
    """`a` rounded to the storage `dtype` and returned as float64 (what `bnspec` compares)."""
    a = np.asarray(a, dtype=np.float64)
    if dtype == "float64":
        return a
    if dtype == "float32":
        return a.astype(np.float32).astype(np.float64)
    if dtype == "float16":
        with np.errstate(over="ignore"):
            return a.astype(np.float16).astype(np.float64)
    if dtype == "bfloat16":
        return from_bfloat16_bits(bfloat16_bits(a)).astype(np.float64)
    raise ValueError(f"unknown dtype {dtype!r} (one of {', '.join(DTYPES)})")


def load(path: str, dtype: str) -> np.ndarray:
    """An input array; a bfloat16 one (uint16 bit patterns on disk) is widened exactly to float32."""
    a = np.load(path)
    if dtype == "bfloat16":
        a = from_bfloat16_bits(a)
    return a


def save(path: str, a, dtype: str) -> None:
    """Writes `a` in the storage `dtype` (bfloat16 as uint16 bit patterns), atomically."""
    a = np.asarray(a)
    if dtype == "float16":
        a = a.astype(np.float16)
    elif dtype == "bfloat16":
        a = bfloat16_bits(a)
    elif dtype == "float64":
        a = a.astype(np.float64)
    else:
        a = a.astype(np.float32)
    tmp = path + ".tmp.npy"
    np.save(tmp, np.ascontiguousarray(a))
    os.replace(tmp, path)
