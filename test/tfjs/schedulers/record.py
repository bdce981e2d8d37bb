"""Records what PyTorch's learning-rate schedulers do, for test/tfjs/schedulers.

Run from the repository root with PyTorch 2.13 (CPU) and mpmath:

    /tmp/tv/bin/python test/tfjs/schedulers/record.py
    npx biome format --write test/tfjs/schedulers/recorded.json

It writes test/tfjs/schedulers/recorded.json (biome only re-wraps it; commit both files, CI has
no Python):

- "runs": schedulers over one or more param groups (SGD), stepped as training does
  (optimizer.step() then scheduler.step()): the rates after the constructor (step 0) and after
  each step, and state_dict() after some steps ("states", keyed by step). Each run's "spec"
  says how to build it: {"type", "args"} in torch's argument names, SequentialLR with
  "schedulers" (specs) and "milestones".
- "closedForm": torch's `_update_lr(epoch)` (what SequentialLR does at a milestone; the closed
  form) on a freshly constructed scheduler, per epoch.
- "resumed": a state loaded into a fresh scheduler (load_state_dict), then more steps: the
  rates and the final state_dict(). Covers states of older PyTorch (`verbose`, no `_is_initial`),
  a `_step_count` of 0 (CosineAnnealingLR's resume branch) and the Lightning fixtures' states.
- "exactMath": {"cos": [[x, cos x]], "powInt": [[base, n, base ** n]]} correctly rounded, from
  mpmath (300 bits) and exact fractions; "inf" / "-inf" where the power overflows.
- "cosineSweep": CosineAnnealingLR over 3 * T_max steps for several T_max. CPython's math.cos
  is the platform libm's (glibc here), which is not correctly rounded for every argument;
  "firstLibmInexactStep" is the first step whose cosines include one where glibc's result is
  not the correctly rounded one (checked with mpmath at 300 bits), or null.

JSON numbers are the float64 values torch gave (repr, exact); Counter keys are strings.
"""

import json
import math
import warnings
from collections import Counter
from pathlib import Path

import mpmath
import torch

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
mpmath.mp.prec = 300

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent.parent / "fixtures" / "torch"
L = torch.optim.lr_scheduler


def plain(value):
    if isinstance(value, (dict, Counter)):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.item()
    return value


def optimizer(base_lrs):
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in base_lrs]
    return torch.optim.SGD(groups, lr=base_lrs[0])


def build(opt, spec):
    if spec["type"] == "SequentialLR":
        inner = [build(opt, s) for s in spec["schedulers"]]
        return L.SequentialLR(opt, inner, milestones=spec["milestones"])
    return getattr(L, spec["type"])(opt, **spec["args"])


def lrs(scheduler):
    return [float(v) for v in scheduler.get_last_lr()]


def run(name, spec, base_lrs, steps, states_at):
    opt = optimizer(base_lrs)
    scheduler = build(opt, spec)
    rates = [lrs(scheduler)]
    states = {}
    if 0 in states_at:
        states["0"] = plain(scheduler.state_dict())
    for step in range(1, steps + 1):
        opt.step()
        scheduler.step()
        rates.append(lrs(scheduler))
        if step in states_at:
            states[str(step)] = plain(scheduler.state_dict())
    return {"name": name, "spec": spec, "baseLrs": base_lrs, "lrs": rates, "states": states}


def spec(type_, **args):
    return {"type": type_, "args": args}


def runs():
    three = [0.1, 0.02, 1.0]
    out = [
        run("StepLR, 3 groups", spec("StepLR", step_size=3, gamma=0.5), three, 12, [0, 5, 12]),
        run(
            "MultiStepLR with repeated milestones",
            spec("MultiStepLR", milestones=[2, 5, 5, 7, 7, 7], gamma=0.9),
            three,
            10,
            [0, 5, 10],
        ),
        run("ExponentialLR, 3 groups", spec("ExponentialLR", gamma=0.95), three, 12, [0, 5]),
        run(
            "CosineAnnealingLR, 3 groups, past T_max",
            spec("CosineAnnealingLR", T_max=6, eta_min=1e-4),
            three,
            20,
            [0, 5, 13],
        ),
        run(
            "LinearLR decaying, 3 groups",
            spec("LinearLR", start_factor=1.0, end_factor=0.2, total_iters=4),
            three,
            8,
            [0, 2, 8],
        ),
        run("LinearLR defaults", spec("LinearLR"), [3e-4], 7, [0, 7]),
        run(
            "SequentialLR of three",
            {
                "type": "SequentialLR",
                "schedulers": [
                    spec("LinearLR", start_factor=0.25, total_iters=4),
                    spec("StepLR", step_size=3, gamma=0.5),
                    spec("CosineAnnealingLR", T_max=6, eta_min=1e-4),
                ],
                "milestones": [4, 9],
            },
            [0.1, 0.05],
            20,
            [0, 4, 9, 12, 20],
        ),
        run(
            "SequentialLR starting at its second scheduler",
            {
                "type": "SequentialLR",
                "schedulers": [
                    spec("ExponentialLR", gamma=0.5),
                    spec("MultiStepLR", milestones=[2, 3], gamma=0.5),
                ],
                "milestones": [0],
            },
            [0.1],
            6,
            [0, 3],
        ),
        run(
            "SequentialLR, ExponentialLR then LinearLR",
            {
                "type": "SequentialLR",
                "schedulers": [
                    spec("ExponentialLR", gamma=0.9),
                    spec("LinearLR", start_factor=0.5, total_iters=2),
                ],
                "milestones": [3],
            },
            [0.1],
            7,
            [0, 3, 7],
        ),
    ]
    return out


def closed_forms():
    cases = [
        ("StepLR", spec("StepLR", step_size=3, gamma=0.9), [0, 1, 3, 7, 30]),
        (
            "MultiStepLR",
            spec("MultiStepLR", milestones=[2, 5, 5, 7, 7, 7], gamma=0.9),
            [0, 2, 5, 6, 7, 100],
        ),
        ("ExponentialLR", spec("ExponentialLR", gamma=0.9), [0, 1, 4, 23, 29, 40, 41]),
        ("CosineAnnealingLR", spec("CosineAnnealingLR", T_max=7, eta_min=1e-3), [0, 1, 3, 7, 10]),
        (
            "LinearLR",
            spec("LinearLR", start_factor=0.1, end_factor=0.9, total_iters=7),
            [0, 1, 3, 7, 10],
        ),
    ]
    out = []
    for name, s, epochs in cases:
        values = []
        for epoch in epochs:
            opt = optimizer([0.1, 0.7])
            scheduler = build(opt, s)
            scheduler._update_lr(epoch)
            state = plain(scheduler.state_dict())
            values.append({"epoch": epoch, "lrs": lrs(scheduler), "state": state})
        out.append({"name": name, "spec": s, "baseLrs": [0.1, 0.7], "values": values})
    return out


def resumed_run(name, s, base_lrs, state, steps):
    opt = optimizer(base_lrs)
    scheduler = build(opt, s)
    scheduler.load_state_dict(json.loads(json.dumps(state)))
    # The optimizer is restored alongside in a real resume: its rates are the saved last ones.
    for group, lr in zip(opt.param_groups, state["_last_lr"], strict=True):
        group["lr"] = lr
    rates = []
    for _ in range(steps):
        opt.step()
        scheduler.step()
        rates.append(lrs(scheduler))
    return {
        "name": name,
        "spec": s,
        "baseLrs": base_lrs,
        "state": state,
        "lrs": rates,
        "finalState": plain(scheduler.state_dict()),
    }


def resumed():
    expected = json.loads((FIXTURES / "expected.json").read_text())["files"]
    lightning = expected["lightning.ckpt"]["lrSchedulers"][0]
    anemoi = expected["anemoi.ckpt"]["lrSchedulers"][0]
    step_state = {
        "step_size": 2,
        "gamma": 0.5,
        "base_lrs": [0.1],
        "last_epoch": 3,
        "verbose": False,
        "_step_count": 4,
        "_get_lr_called_within_step": False,
        "_last_lr": [0.05],
    }
    # _step_count 0 (never saved by torch >= 1.1): the next step takes get_lr's closed-form branch.
    cosine_step_count_zero = {
        "T_max": 8,
        "eta_min": 0.0,
        "base_lrs": [0.1],
        "last_epoch": 3,
        "_step_count": 0,
        "_is_initial": False,
        "_get_lr_called_within_step": False,
        "_last_lr": [0.1 * (1 + math.cos(3 * math.pi / 8)) / 2],  # the rate at epoch 3
    }
    return [
        resumed_run(
            "Lightning fixture's CosineAnnealingLR",
            spec("CosineAnnealingLR", T_max=10),
            [1e-3],
            lightning,
            8,
        ),
        resumed_run(
            "anemoi fixture's LinearLR",
            spec("LinearLR", start_factor=0.5, total_iters=4),
            [6.25e-4],
            anemoi,
            4,
        ),
        resumed_run(
            "StepLR state of older PyTorch (verbose, no _is_initial)",
            spec("StepLR", step_size=2, gamma=0.5),
            [0.1],
            step_state,
            3,
        ),
        resumed_run(
            "CosineAnnealingLR with _step_count 0",
            spec("CosineAnnealingLR", T_max=8),
            [0.1],
            cosine_step_count_zero,
            4,
        ),
    ]


def correctly_rounded_cos(x):
    return float(mpmath.cos(mpmath.mpf(x)))  # |cos x| >= 2^-62: never subnormal


def cosine_sweep():
    out = []
    for t_max in [1, 2, 3, 5, 7, 10, 39, 58, 100, 1000]:
        steps = 3 * t_max if t_max < 1000 else 1400
        base, eta = (0.1, 1e-3) if t_max % 2 else (2e-4, 0.0)
        opt = optimizer([base])
        scheduler = L.CosineAnnealingLR(opt, T_max=t_max, eta_min=eta)
        rates, first_inexact = [], None
        for step in range(1, steps + 1):
            opt.step()
            scheduler.step()
            rates.append(lrs(scheduler)[0])
            if (step - 1 - t_max) % (2 * t_max) == 0:
                args = [math.pi / t_max]
            else:
                args = [math.pi * step / t_max, math.pi * (step - 1) / t_max]
            if first_inexact is None and any(math.cos(x) != correctly_rounded_cos(x) for x in args):
                first_inexact = step
        out.append(
            {
                "T_max": t_max,
                "eta_min": eta,
                "baseLr": base,
                "lrs": rates,
                "firstLibmInexactStep": first_inexact,
            }
        )
    return out


def exact_math():
    """Correctly rounded cos and integer powers, for exact-math/ (not from libm: from mpmath)."""
    import random
    from fractions import Fraction

    random.seed(2013)
    cos_args = [math.pi * k / t for t in range(1, 31) for k in range(0, 2 * t + 2)]
    cos_args += [random.uniform(-1e4, 1e4) for _ in range(150)]
    cos_args += [random.uniform(-1, 1) * 2.0 ** random.randint(-30, 1023) for _ in range(100)]
    cos_args += [
        2.0**-27,
        math.nextafter(2.0**-27, 0),
        1e-9,
        -0.5,
        math.pi / 2,
        -math.pi,
        1e22,
        2.0**1023,
        1.7976931348623157e308,
        6381956970095103 * 2.0**797,  # the double closest to a multiple of pi/2
    ]
    cos = [[x, correctly_rounded_cos(x)] for x in cos_args]

    bases = (0.1, 0.5, 0.9, 0.95, 0.99, 0.3, 1 / 3, -0.7)
    pow_cases = [(g, n) for g in bases for n in range(0, 41)]
    pow_cases += [(random.random(), random.randint(2, 300)) for _ in range(150)]
    # Subnormal, underflowing, overflowing and huge-exponent powers.
    pow_cases += [(0.5, 1074), (0.5, 1075), (-0.5, 1073), (0.75, 2000), (0.999, 700000)]
    pow_cases += [(2.0, 1024), (1.5, 1750), (-3.0, 647)]
    powers = []
    for g, n in pow_cases:
        try:
            value = float(Fraction(g) ** n) if n <= 5000 else float(mpmath.mpf(g) ** n)
        except OverflowError:
            value = math.copysign(math.inf, g) if n % 2 else math.inf
        text = {math.inf: "inf", -math.inf: "-inf"}.get(value, value)
        powers.append([g, n, text])
    return {"cos": cos, "powInt": powers}  # float(Fraction) rounds correctly, subnormals too


def main():
    record = {
        "description": "torch.optim.lr_scheduler, recorded by test/tfjs/schedulers/record.py",
        "torch": torch.__version__,
        "runs": runs(),
        "closedForm": closed_forms(),
        "resumed": resumed(),
        "cosineSweep": cosine_sweep(),
        "exactMath": exact_math(),
    }
    path = HERE / "recorded.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
