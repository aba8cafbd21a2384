#!/usr/bin/python3
"""Writes the safetensors reference files for tests/io/test_safetensors.cpp (run with /usr/bin/python3: torch 1.13).

torch 1.13 has no safetensors module, so the format is written here by hand, exactly as the specification says:
8-byte little-endian header length, JSON header, byte buffer (Python's json.dumps spacing, which differs from
hepgnn's own writer, so both header styles get tested).

Outputs (tests/data/):
  safetensors_mlp.safetensors     state_dict (F32) of nn.Sequential(Linear(3,4), ReLU(), Linear(4,2)), seed 7
  safetensors_mlp_io.safetensors  "input" [5,3] F64 and "output" [5,2] F64: the model in float64 on that input
  safetensors_dtypes.safetensors  one tensor per dtype (F16 BF16 F32 F64 I8 I16 I32 I64 U8 BOOL), each with a
                                  "<name>.expected" F64 tensor holding torch's own conversion to float64, plus
                                  a 0-d scalar, an empty [0,3] tensor and a non-ASCII name
"""
import json
import os
import struct

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data")

DTYPES = {
    torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32", torch.float64: "F64",
    torch.int8: "I8", torch.int16: "I16", torch.int32: "I32", torch.int64: "I64",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: reinterpret as int16
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    arr = t.numpy()
    return arr.astype(arr.dtype.newbyteorder("<")).tobytes()


def write(path, tensors, metadata=None):
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        b = tensor_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    text = json.dumps(header).encode("utf-8")
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in chunks:
            f.write(b)
    print("wrote", os.path.relpath(path), len(tensors), "tensors")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(7)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    write(os.path.join(OUT, "safetensors_mlp.safetensors"),
          {k: v.detach().float() for k, v in model.state_dict().items()}, {"format": "pt", "source": "torch 1.13"})
    x = torch.linspace(-1.5, 2.0, 15, dtype=torch.float64).reshape(5, 3)
    y = model.double()(x).detach()
    write(os.path.join(OUT, "safetensors_mlp_io.safetensors"), {"input": x, "output": y})

    base = torch.tensor([0.5, -1.25, 3.0, 1.0 / 3.0, 65504.0, 2.0 ** -24, -0.0, 1e-3], dtype=torch.float64)
    ints = torch.tensor([0, 1, -1, 7, -128, 127, 42, -5], dtype=torch.int64)
    tensors = {}
    for dt in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        t = base.to(dt).reshape(2, 4)
        tensors[DTYPES[dt].lower()] = t
        tensors[DTYPES[dt].lower() + ".expected"] = t.double()
    for dt in (torch.int8, torch.int16, torch.int32, torch.int64):
        t = ints.to(dt).reshape(4, 2)
        tensors[DTYPES[dt].lower()] = t
        tensors[DTYPES[dt].lower() + ".expected"] = t.double()
    u8 = torch.tensor([0, 1, 200, 255], dtype=torch.uint8)
    tensors["u8"], tensors["u8.expected"] = u8, u8.double()
    b = torch.tensor([True, False, True], dtype=torch.bool)
    tensors["bool"], tensors["bool.expected"] = b, b.double()
    tensors["scalar"] = torch.tensor(2.5, dtype=torch.float32)
    tensors["empty"] = torch.zeros(0, 3, dtype=torch.float32)
    tensors["caf\u00e9 \"quoted\""] = torch.tensor([1.0], dtype=torch.float32)
    write(os.path.join(OUT, "safetensors_dtypes.safetensors"), tensors)


if __name__ == "__main__":
    main()
