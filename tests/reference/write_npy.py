#!/usr/bin/python3
"""Writes small .npy / .npz files with NumPy for tests/io/test_npy.cpp (run with /usr/bin/python3).

Every array is a simple function of its index so the C++ test can recompute the expected values:
value[i] = (i - 3) * 0.75 for floating dtypes, (i - 3) * 7 for signed integers, i * 37 % 256 for u1,
i % 3 == 0 for b1 (i = flat C-order index).
Outputs (tests/data/npy/): one .npy per dtype and layout, format versions 2.0 and 3.0, a big-endian file,
a Fortran-order file (must be rejected), and arrays.npz (numpy.savez, stored) /
arrays_compressed.npz (numpy.savez_compressed, deflate) holding a, b, c.
"""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "npy")


def pattern(dtype, shape):
    n = int(np.prod(shape)) if len(shape) else 1
    i = np.arange(n)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        v = (i - 3) * 0.75
    elif dt.kind == "i":
        v = (i - 3) * 7
    elif dt.kind == "u":
        v = i * 37 % 256
    else:
        v = i % 3 == 0
    return v.astype(dt).reshape(shape)


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {
        "f4_2x3.npy": pattern("<f4", (2, 3)),
        "f8_4.npy": pattern("<f8", (4,)),
        "f8_scalar.npy": pattern("<f8", ()),
        "i4_3x2x2.npy": pattern("<i4", (3, 2, 2)),
        "i8_5.npy": pattern("<i8", (5,)),
        "b1_7.npy": pattern("|b1", (7,)),
        "u1_2x4.npy": pattern("|u1", (2, 4)),
        "f4_0x3.npy": pattern("<f4", (0, 3)),
        "f8_big_endian_2x2.npy": pattern(">f8", (2, 2)),
        "i4_big_endian_3.npy": pattern(">i4", (3,)),
    }
    for name, arr in files.items():
        np.save(os.path.join(OUT, name), arr)
    for version in ((2, 0), (3, 0)):
        with open(os.path.join(OUT, "f8_2x2_v%d.npy" % version[0]), "wb") as f:
            np.lib.format.write_array(f, pattern("<f8", (2, 2)), version=version)
    np.save(os.path.join(OUT, "f8_fortran_2x3.npy"), np.asfortranarray(pattern("<f8", (2, 3))))
    np.save(os.path.join(OUT, "c8_2.npy"), np.array([1 + 2j, 3 - 1j], dtype="<c8"))
    arrays = {"a": pattern("<f4", (2, 3)), "b": pattern("<i8", (4,)), "c": pattern("<f8", (3, 3))}
    np.savez(os.path.join(OUT, "arrays.npz"), **arrays)
    np.savez_compressed(os.path.join(OUT, "arrays_compressed.npz"), **arrays)
    print("wrote", len(os.listdir(OUT)), "files to", os.path.relpath(OUT))


if __name__ == "__main__":
    main()
