"""Expected contents of the real torch files in the shared corpora, established by real PyTorch.

Run with the PyTorch install (torch 2.13 CPU), from anywhere:
    /tmp/tv/bin/python test/torch/expected-corpus.py
It torch.load()s each file with weights_only=True (they are real torch files, safe under the
weights_only unpickler) and writes expected-corpus.json next to this script: for every tensor
(and bare storage) in the loaded object, its path in the tree, dtype, shape, strides, storage
offset, flags, the sum of its elements and its first few elements in row-major order. The tests
(corpus.test.ts) compare loadout's reading of the same files against this file; CI has no torch.
"""

import json
import math
import os
import subprocess
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CORPORA = os.path.join(os.path.dirname(REPO), "shared", "corpora")
FIRST = 8

FILES = [
    "real/zip_double_BE_noBOM.pt",
    "real/zip_double_LE_noBOM.pt",
    "real/zip_float_BE_BOM.pt",
    "real/zip_fortran_strides.pth",
    "real/zip_rebuild_parameter.pt",
    "real/zip_torch1.x_archive_prefix.bin",
    "real/zip_torch2.6plus_bfloat16.pt",
    "real/legacy_cuda0_location.pt",
    "real/legacy_hf_pytorch_model.bin",
    "real/legacy_offset_strides_picklejl.bin",
    "real/legacy_torch0.3.1_storage_views.pt",
    "real/legacy_torch0.4.1_py27_shortbinstring.pt",
    "real/legacy_uncloned_views_offsets.pt",
]


def number(x):
    """A JSON-safe number: NaN and infinities as strings, integers beyond 2^53 as strings."""
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, int):
        return x if abs(x) <= 2**53 else str(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def values_of(t):
    """Elements in row-major order as Python numbers (floats widened exactly to float64)."""
    flat = t.detach().reshape(-1)
    if t.dtype.is_floating_point:
        flat = flat.to(torch.float64)
    return [number(v) for v in flat.tolist()]


def total(t):
    t = t.detach()
    if t.dtype.is_floating_point:
        return number(t.to(torch.float64).sum().item())
    return number(t.to(torch.int64).sum().item())


def describe_tensor(path, t):
    values = values_of(t)
    return {
        "path": path,
        "kind": "parameter" if isinstance(t, torch.nn.Parameter) else "tensor",
        "dtype": str(t.dtype).removeprefix("torch."),
        "shape": list(t.shape),
        "strides": list(t.stride()),
        "storageOffset": t.storage_offset(),
        "requiresGrad": t.requires_grad,
        "numel": t.numel(),
        "sum": total(t),
        "first": values[:FIRST],
        "storagePointer": t.untyped_storage().data_ptr(),
    }


def describe_storage(path, s):
    t = torch.tensor([], dtype=s.dtype).set_(s)
    values = values_of(t)
    return {
        "path": path,
        "kind": "storage",
        "dtype": str(s.dtype).removeprefix("torch."),
        "numel": s.size(),
        "sum": total(t),
        "first": values[:FIRST],
        "storagePointer": s.data_ptr(),
    }


def walk(root):
    """(path, leaf) for every tensor or storage, depth-first with an explicit stack."""
    found = []
    stack = [("", root)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, torch.Tensor):
            found.append(describe_tensor(path, value))
        elif isinstance(value, torch.storage.TypedStorage):
            found.append(describe_storage(path, value))
        elif isinstance(value, dict):
            items = [(f"{path}.{k}" if path else str(k), v) for k, v in value.items()]
            stack.extend(reversed(items))
        elif isinstance(value, (list, tuple)):
            items = [(f"{path}.{i}" if path else str(i), v) for i, v in enumerate(value)]
            stack.extend(reversed(items))
    return found


def main():
    result = {"torch": torch.__version__, "files": {}}
    for name in FILES:
        loaded = torch.load(os.path.join(CORPORA, name), weights_only=True, map_location="cpu")
        leaves = walk(loaded)
        # Which leaves share memory: replace raw pointers by the first path with that pointer.
        first_path = {}
        for leaf in leaves:
            pointer = leaf.pop("storagePointer")
            leaf["sharesStorageWith"] = first_path.setdefault(pointer, leaf["path"])
        result["files"][name] = leaves
    out = os.path.join(HERE, "expected-corpus.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    # Keep the committed file in the repository's format (biome), so that lint passes.
    subprocess.run(["npx", "biome", "format", "--write", out], cwd=REPO, check=True)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
