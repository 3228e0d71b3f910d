"""Storage dtypes: bfloat16 bit patterns and rounding, checked against values worked out by hand."""
import numpy as np

from bnspec import arrays


def test_bfloat16_rounds_to_nearest_even():
    # bfloat16 keeps 8 significand bits: 1 + k·2⁻⁷. 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷:
    # ties go to the even pattern (1.0); 1 + 3·2⁻⁸ is halfway between 1 + 2⁻⁷ and 1 + 2·2⁻⁷ → the even one.
    x = np.array([1.0, 1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-8 + 2**-20, -2.0, 0.0, -0.0])
    assert arrays.bfloat16_bits(x).tolist() == [0x3F80, 0x3F80, 0x3F82, 0x3F81, 0xC000, 0x0000, 0x8000]


def test_bfloat16_specials_and_overflow():
    x = np.array([np.nan, np.inf, -np.inf, 3.4e38])  # 3.4e38 rounds past bfloat16's largest finite value
    assert arrays.bfloat16_bits(x).tolist() == [0x7FC0, 0x7F80, 0xFF80, 0x7F80]


def test_bfloat16_widening_is_exact():
    bits = np.array([0x3F80, 0x3F81, 0xC049, 0x0001], np.uint16)
    want = [1.0, 1 + 2**-7, -(1 + 0x49 / 128) * 2, 2.0**-133]
    assert arrays.from_bfloat16_bits(bits).astype(np.float64).tolist() == want


def test_round_to_uses_two_roundings_for_bfloat16():
    # A float64 just above the bfloat16 tie 1 + 2⁻⁸ rounds to 1.0 in float32 first (2⁻⁴⁰ is below its
    # precision), then the tie goes to even: 1.0 — a single rounding would give 1 + 2⁻⁷.
    assert arrays.round_to([1 + 2**-8 + 2**-40], "bfloat16").tolist() == [1.0]


def test_round_to_float16_and_float32():
    assert arrays.round_to([2049.0, 65520.0, 1e-8], "float16").tolist() == [2048.0, np.inf, 0.0]
    assert arrays.round_to([1 + 2**-30], "float32").tolist() == [1.0]
    assert arrays.round_to([1 + 2**-30], "float64").tolist() == [1 + 2**-30]


def test_save_writes_the_storage_dtype(tmp_path):
    for dtype, want in (("float16", np.float16), ("bfloat16", np.uint16), ("float32", np.float32), ("float64", np.float64)):
        p = str(tmp_path / f"{dtype}.npy")
        arrays.save(p, np.array([1.5, 2.25]), dtype)
        a = np.load(p)
        assert a.dtype == want
        assert arrays.load(p, dtype).astype(np.float64).tolist() == [1.5, 2.25]
    assert not [f for f in tmp_path.iterdir() if ".tmp" in f.name]
