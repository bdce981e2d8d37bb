"""What real PyTorch loads from files loadout wrote (used by torch-load.test.ts).

    python torch-load.py SPEC_JSON

SPEC_JSON is a list of {"path": ..., "resave": bool, "training": bool}. For each file this runs
torch.load(path, weights_only=True) and prints, as JSON on stdout:
  - "tree": the loaded object with every value tagged by its Python type (a float as its repr, an
    int as a decimal string, a tensor as an index into "tensors");
  - "tensors": dtype, shape, stride, storage offset, requires_grad and the sha256 of each distinct
    tensor's raw bytes (identity kept: a tensor met twice has one index);
  - with "resave": torch.save(obj) of what was loaded (to a buffer: folder "archive"), written to
    path + ".resaved";
  - with "training": the optimizer state loaded into a real torch.optim.AdamW built from the
    state dict's tensors (one step taken), and the scheduler state into a CosineAnnealingLR.
Nothing here is loaded without weights_only=True.
"""

import hashlib
import io
import json
import sys

import torch


def tensor_bytes(t):
    flat = t.detach().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def describe(value, tensors, ids):
    if value is None:
        return None
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, int):
        return {"int": str(value)}
    if isinstance(value, float):
        return {"float": repr(value)}
    if isinstance(value, str):
        return {"str": value}
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, torch.Tensor):
        if id(value) not in ids:
            ids[id(value)] = len(tensors)
            tensors.append({
                "dtype": str(value.dtype).removeprefix("torch."),
                "shape": list(value.shape),
                "stride": list(value.stride()),
                "storageOffset": value.storage_offset(),
                "requiresGrad": value.requires_grad,
                "sha256": hashlib.sha256(tensor_bytes(value)).hexdigest(),
            })
        return {"tensor": ids[id(value)]}
    if isinstance(value, tuple):
        return {"tuple": [describe(v, tensors, ids) for v in value]}
    if isinstance(value, list):
        return {"list": [describe(v, tensors, ids) for v in value]}
    if isinstance(value, dict):
        return {
            "dict": [[describe(k, tensors, ids), describe(v, tensors, ids)] for k, v in value.items()],
            "type": type(value).__name__,
        }
    if isinstance(value, set):
        return {"set": sorted((describe(v, tensors, ids) for v in value), key=json.dumps)}
    raise TypeError(f"unexpected {type(value)}")


def load_training(checkpoint):
    """The optimizer and scheduler state in real torch objects."""
    state_dict = checkpoint["state_dict"]
    optimizer_state = checkpoint["optimizer_states"][0]
    groups = []
    for group in optimizer_state["param_groups"]:
        named = [(name, torch.nn.Parameter(state_dict[name].clone())) for name in group["param_names"]]
        groups.append({"params": named})
    optimizer = torch.optim.AdamW(groups)
    optimizer.load_state_dict(optimizer_state)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=1)
    scheduler.load_state_dict(checkpoint["lr_schedulers"][0])
    loaded = optimizer.state_dict()
    steps_before = {str(i): s["step"].item() for i, s in loaded["state"].items()}
    for group in optimizer.param_groups:
        for p in group["params"]:
            p.grad = torch.zeros_like(p)
    optimizer.step()
    return {
        "lrs": [g["lr"] for g in optimizer.param_groups],
        "stepsLoaded": steps_before,
        "stepsAfterOneStep": {str(i): s["step"].item() for i, s in optimizer.state_dict()["state"].items()},
        "schedulerLastLr": scheduler.get_last_lr(),
        "schedulerLastEpoch": scheduler.last_epoch,
        "schedulerTMax": scheduler.T_max,
    }


def main():
    out = {"torch": torch.__version__, "files": {}}
    for spec in json.loads(sys.argv[1]):
        path = spec["path"]
        obj = torch.load(path, weights_only=True)
        tensors, ids = [], {}
        entry = {"tree": describe(obj, tensors, ids), "tensors": tensors}
        if spec.get("resave"):
            # Through a buffer, so the archive folder is "archive" as in loadout's default.
            buffer = io.BytesIO()
            torch.save(obj, buffer)
            with open(path + ".resaved", "wb") as f:
                f.write(buffer.getvalue())
        if spec.get("training"):
            entry["training"] = load_training(obj)
        out["files"][path] = entry
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
