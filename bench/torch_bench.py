"""PyTorch contenders for loadout's benchmark (bench/run.js drives this; see docs/benchmarks.md).

Served mode (what run.js uses): `python torch_bench.py --serve` reads one JSON request per line
on stdin and answers one JSON line on stdout, so that run.js can interleave torch's runs with its
own in the same rounds. Standalone: `python torch_bench.py --data bench/data/full` times each
operation on the files run.js generated and prints medians.

Peak memory: the kernel's peak-RSS counter (VmHWM) is reset through /proc/self/clear_refs before
each operation and read after it; extra = peak - RSS at start. With mmap=True, file pages that
torch maps count in RSS (they are page cache, shared and reclaimable): RssFile is reported apart.
"""

import argparse
import gc
import json
import statistics
import sys
import time

import torch

MiB = 1024 * 1024


def status():
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                fields[name] = int(rest.split()[0]) * 1024
    return fields


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Watch:
    """Peak RSS over a block: kernel VmHWM when resettable, else RSS at the end."""

    def __enter__(self):
        gc.collect()
        self.kernel = reset_peak()
        self.start = status()
        self.t0 = time.perf_counter()
        return self

    def stop(self):
        self.ms = (time.perf_counter() - self.t0) * 1000
        end = status()
        peak = end["VmHWM"] if self.kernel else end["VmRSS"]
        self.extra = max(0, peak - self.start["VmRSS"])
        self.extra_file = max(0, end.get("RssFile", 0) - self.start.get("RssFile", 0))
        self.extra_anon = max(0, end.get("RssAnon", 0) - self.start.get("RssAnon", 0))

    def __exit__(self, *exc):
        return False


def value_at(t, j):
    return (((t * 7919 + j * 31) % 255) - 127) / 64


def verify(destinations, label):
    """The same probes as bench/lib/values.mjs: first, second, middle and last element."""
    for t, dest in enumerate(destinations):
        flat = dest.view(-1)
        n = flat.numel()
        for j in sorted({0, min(1, n - 1), n // 2, n - 1}):
            got = flat[j].item()
            if got != value_at(t, j):
                raise RuntimeError(f"{label}: tensor {t} element {j} is {got}, expected {value_at(t, j)}")


def poison(destinations):
    for dest in destinations:
        flat = dest.view(-1)
        n = flat.numel()
        for j in {0, min(1, n - 1), n // 2, n - 1}:
            flat[j] = float("nan")


_destinations = {}


def destinations(count, shape):
    """float32 tensors allocated and touched once, reused by every request (as run.js does)."""
    key = (count, tuple(shape))
    if key not in _destinations:
        _destinations.clear()
        gc.collect()
        _destinations[key] = [torch.full(shape, -1.0, dtype=torch.float32) for _ in range(count)]
    return _destinations[key]


def op_hello(_):
    return {"torch": torch.__version__, "python": sys.version.split()[0], "threads": torch.get_num_threads()}


def op_open(req):
    """torch.load of a whole checkpoint (weights_only), as loadout's open + listing."""
    with Watch() as w:
        obj = torch.load(req["path"], weights_only=True, mmap=req.get("mmap", False), map_location="cpu")
        w.stop()
    tensors = len(obj["state_dict"]) if isinstance(obj, dict) and "state_dict" in obj else len(obj)
    del obj
    return {"ms": w.ms, "extra": w.extra, "tensors": tensors}


def op_read_into(req):
    """torch.load(mmap=True) + copy_ into preallocated float32 tensors (converting bf16)."""
    dest = destinations(req["count"], req["shape"])
    names = req["names"]
    poison(dest)
    with Watch() as w:
        t0 = time.perf_counter()
        sd = torch.load(req["path"], weights_only=True, mmap=True, map_location="cpu")
        load_ms = (time.perf_counter() - t0) * 1000
        with torch.no_grad():
            for i, name in enumerate(names):
                dest[i].copy_(sd[name])
        w.stop()
    del sd
    verify(dest, "torch copy_")
    return {"ms": w.ms, "load_ms": load_ms, "extra": w.extra, "extra_file": w.extra_file, "extra_anon": w.extra_anon}


class Holder(torch.nn.Module):
    def __init__(self, weight):
        super().__init__()
        self.weight = torch.nn.Parameter(weight, requires_grad=False)


class Model(torch.nn.Module):
    """Parameters named layers.<i>.weight, over the preallocated tensors (no copy)."""

    def __init__(self, weights):
        super().__init__()
        self.layers = torch.nn.ModuleList([Holder(w) for w in weights])


def op_load_state_dict(req):
    """torch.load(mmap=True) + model.load_state_dict(strict=True) into existing parameters."""
    dest = destinations(req["count"], req["shape"])
    model = Model(dest)
    poison(dest)
    with Watch() as w:
        sd = torch.load(req["path"], weights_only=True, mmap=True, map_location="cpu")
        model.load_state_dict(sd, strict=True)
        w.stop()
    del sd
    verify(dest, "torch load_state_dict")
    return {"ms": w.ms, "extra": w.extra, "extra_file": w.extra_file, "extra_anon": w.extra_anon}


OPS = {"hello": op_hello, "open": op_open, "read_into": op_read_into, "load_state_dict": op_load_state_dict}


def serve():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            answer = {"ok": True, **OPS[req["op"]](req)}
        except Exception as error:  # reported to run.js, which prints it
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def standalone(folder, rounds):
    import os

    manifest = json.load(open(os.path.join(folder, "manifest.json")))
    spec = json.loads(manifest["spec"])["spec"]
    big, small = spec["big"], spec["small"]
    names = [f"layers.{i}.weight" for i in range(big["count"])]
    files = {
        "f32": os.path.join(folder, "model-f32.pt"),
        "bf16": os.path.join(folder, "model-bf16.pt"),
        "small": os.path.join(folder, f"lightning-{small['count']}.ckpt"),
    }
    runs = {
        f"torch.load {os.path.basename(files['small'])}": lambda: op_open({"path": files["small"]}),
        "torch.load(mmap) + copy_ f32": lambda: op_read_into(
            {"path": files["f32"], "names": names, "count": big["count"], "shape": big["shape"]}
        ),
        "torch.load(mmap) + copy_ bf16->f32": lambda: op_read_into(
            {"path": files["bf16"], "names": names, "count": big["count"], "shape": big["shape"]}
        ),
        "torch.load(mmap) + load_state_dict f32": lambda: op_load_state_dict(
            {"path": files["f32"], "count": big["count"], "shape": big["shape"]}
        ),
    }
    print(f"torch {torch.__version__}, {rounds} rounds, medians (page cache as it is: run.js warms it)")
    for label, run in runs.items():
        results = [run() for _ in range(rounds)]
        ms = statistics.median(r["ms"] for r in results)
        extra = statistics.median(r["extra"] for r in results)
        print(f"  {label:45s} {ms:9.1f} ms   extra RSS {extra / MiB:7.1f} MiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", action="store_true", help="answer JSON requests on stdin (used by run.js)")
    parser.add_argument("--data", default="bench/data/full", help="folder of generated files (standalone)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.serve:
        serve()
    else:
        standalone(args.data, args.rounds)


if __name__ == "__main__":
    main()
