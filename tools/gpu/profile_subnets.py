#!/usr/bin/env python3
"""Measures a supernet's served subnets on a GPU with PyTorch and writes a profile.json.

sloserve serves supernets through onnxruntime on CPUs. The GPU machines this project can borrow carry
PyTorch with CUDA but neither Node.js nor onnxruntime's CUDA provider, so the GPU case of SuperServe is
measured here: the same subnets (tools/gpu/subnets.json, written by `npm run gpu:specs` from the
architectures in src/zoo/supernet/*-arch.ts: the same widths, depths and shapes, normalisation folded
into each conv as a subnet exported alone has it) built as PyTorch modules with seeded random weights
(latency does not depend on their values), timed over batch sizes 1-64, and written in the repository's
profile.json format (src/repository/schema.ts) with the machine and the method recorded.

A batch is timed as a server runs it: the input rows copied from host memory to the device, the
forward pass with softmax, the probabilities copied back, then a device synchronise; wall-clock time
around all of it. Cold start ("load_ms"): building the largest subnet's weights, moving them to the
device and running one batch, the first sample including the CUDA context; a GPU instance is not
resized in place, so "resize_ms" repeats the load samples (the method string says so).

Usage (see tools/gpu/README.md):
  python3 tools/gpu/profile_subnets.py --task vision-supernet --out experiments/superserve/gpu/vision-supernet.profile.json
  python3 tools/gpu/profile_subnets.py --task digits-supernet --device cpu --batches 1,2 --subnets 2 --out /tmp/p.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
DEFAULT_BATCHES = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]


class Subnet(torch.nn.Module):
    """One subnet's op list (subnet-spec.ts) as a module: values are numbered, value 0 is the input."""

    def __init__(self, spec: dict, gen: torch.Generator):
        super().__init__()
        self.ops = spec["ops"]
        self.layers = torch.nn.ModuleList()
        self.index: dict[int, int] = {}
        for k, op in enumerate(self.ops):
            if op["op"] == "conv":
                m = torch.nn.Conv2d(op["cin"], op["cout"], op["kernel"], op["stride"], op["pad"], bias=True)
                fan_in = op["cin"] * op["kernel"] ** 2
                with torch.no_grad():
                    m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                    m.bias.zero_()
            elif op["op"] == "dense":
                m = torch.nn.Linear(op["in_features"], op["out_features"])
                with torch.no_grad():
                    m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / op["in_features"]) ** 0.5)
                    m.bias.zero_()
            else:
                continue
            self.index[k] = len(self.layers)
            self.layers.append(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = {0: x}
        for k, op in enumerate(self.ops):
            kind = op["op"]
            if kind in ("conv", "dense"):
                y = self.layers[self.index[k]](v[op["x"]])
            elif kind == "relu":
                y = F.relu(v[op["x"]])
            elif kind == "add":
                y = v[op["a"]] + v[op["b"]]
            elif kind == "maxpool":
                y = F.max_pool2d(v[op["x"]], op["kernel"], op["stride"], op["pad"])
            elif kind == "gap":
                y = F.adaptive_avg_pool2d(v[op["x"]], 1)
            elif kind == "flatten":
                y = torch.flatten(v[op["x"]], 1)
            elif kind == "softmax":
                y = F.softmax(v[op["x"]], dim=1)
            else:
                raise ValueError(f"unknown op '{kind}' in the subnet spec; regenerate it with 'npm run gpu:specs'")
            v[op["out"]] = y
        return v[self.ops[-1]["out"]]


def quantile(xs: list[float], q: float) -> float:
    """R-7, the project's one quantile rule (src/stats/quantile.ts)."""
    s = sorted(xs)
    pos = (len(s) - 1) * min(1.0, max(0.0, q))
    lo, hi = int(np.floor(pos)), int(np.ceil(pos))
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def fit_batch(points: list[dict], stat: str) -> dict:
    """l(b, c) = α·b/c + β·b + γ/c + ζ on one device (c = 1): only β·b + ζ is identifiable; α = γ = 0."""
    b = np.array([p["batch"] for p in points], dtype=float)
    y = np.array([p[stat] for p in points], dtype=float)
    if len(set(b.tolist())) < 2:
        beta, zeta = 0.0, float(y.mean())
    else:
        beta, zeta = np.linalg.lstsq(np.stack([b, np.ones_like(b)], axis=1), y, rcond=None)[0]
    pred = beta * b + zeta
    rel = np.abs(pred - y) / np.maximum(y, 1e-9)
    return {
        "alpha": 0.0,
        "beta": float(beta),
        "gamma": 0.0,
        "zeta": float(zeta),
        "median_rel_error": float(quantile(rel.tolist(), 0.5)),
        "max_rel_error": float(rel.max()),
        "rmse_ms": float(np.sqrt(np.mean((pred - y) ** 2))),
    }


def fits(points: list[dict]) -> dict:
    return {"p50": fit_batch(points, "p50_ms"), "p99": fit_batch(points, "p99_ms"), "mean": fit_batch(points, "mean_ms")}


def infaas(points: list[dict]) -> dict:
    f = fit_batch(points, "p99_ms")
    return {"1": {"slope": f["beta"], "intercept": f["zeta"], "max_rel_error": f["max_rel_error"]}}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_batch(model: Subnet, host: torch.Tensor, device: torch.device, args) -> list[float]:
    """Warm-up, then runs back to back until min_samples and budget_ms are both reached (or max_samples)."""

    def once() -> float:
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model(host.to(device, non_blocking=False))
            out.cpu()
        sync(device)
        return (time.perf_counter() - t0) * 1000

    for _ in range(args.warmup):
        once()
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < args.max_samples and (
        len(samples) < args.min_samples or (time.perf_counter() - start) * 1000 < args.budget_ms
    ):
        samples.append(once())
    return samples


def build(spec: dict, device: torch.device, dtype: torch.dtype, seed: int) -> Subnet:
    gen = torch.Generator().manual_seed(seed)
    return Subnet(spec, gen).to(device=device, dtype=dtype).eval()


def machine(device: torch.device) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    m = {
        "cpu": cpu,
        "cores": os.cpu_count() or 1,
        "memory_gb": mem_gb,
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "node": "none (measured by tools/gpu/profile_subnets.py under Python, not Node.js)",
        "onnxruntime": f"none (PyTorch {torch.__version__})",
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        m["accelerator"] = (
            f"{props.name} ({round(props.total_memory / 2**30)} GiB, {props.multi_processor_count} SMs), "
            f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, PyTorch {torch.__version__}"
        )
    else:
        m["accelerator"] = f"none: PyTorch {torch.__version__} on the CPU ({torch.get_num_threads()} threads)"
    return m


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--specs", default=str(HERE / "subnets.json"), help="layer lists written by npm run gpu:specs")
    ap.add_argument("--task", required=True, help="supernet task in the specs, e.g. vision-supernet")
    ap.add_argument("--out", required=True, help="profile.json to write")
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--batches", default=",".join(map(str, DEFAULT_BATCHES)), help="comma-separated batch sizes")
    ap.add_argument("--subnets", default="", help="a count (the first N) or comma-separated names; default all")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--min-samples", type=int, default=20)
    ap.add_argument("--max-samples", type=int, default=400)
    ap.add_argument("--budget-ms", type=float, default=300.0, help="time spent sampling each (subnet, batch)")
    ap.add_argument("--load-samples", type=int, default=3)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--cudnn-benchmark", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()

    specs = json.loads(Path(args.specs).read_text())
    sn = next((s for s in specs["supernets"] if s["task"] == args.task), None)
    if sn is None:
        names = ", ".join(s["task"] for s in specs["supernets"])
        print(f"profile_subnets: no supernet '{args.task}' in {args.specs} (it has {names})", file=sys.stderr)
        return 2
    try:
        batches = sorted({int(b) for b in args.batches.split(",") if b.strip()})
    except ValueError:
        print(f"profile_subnets: --batches takes comma-separated integers, got '{args.batches}'", file=sys.stderr)
        return 2
    if not batches or batches[0] < 1:
        print("profile_subnets: batch sizes must be positive", file=sys.stderr)
        return 2
    subnets = sn["subnets"]
    if args.subnets.strip().isdigit():
        subnets = subnets[: int(args.subnets)]
    elif args.subnets.strip():
        wanted = [x.strip() for x in args.subnets.split(",")]
        unknown = [w for w in wanted if w not in {s["name"] for s in subnets}]
        if unknown:
            print(f"profile_subnets: unknown subnets {unknown} of {args.task}", file=sys.stderr)
            return 2
        subnets = [s for s in subnets if s["name"] in wanted]
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("profile_subnets: CUDA is not available here; use --device cpu to try the tool on the CPU", file=sys.stderr)
        return 2
    dtype = getattr(torch, args.dtype)
    torch.backends.cudnn.benchmark = bool(args.cudnn_benchmark)

    # cold start: the largest subnet's weights built, moved to the device, one batch run (the first
    # sample pays the CUDA context and library initialisation, as a fresh instance would)
    largest = max(sn["subnets"], key=lambda s: s["macs"])
    load: list[float] = []
    for _ in range(max(1, args.load_samples)):
        t0 = time.perf_counter()
        m = build(largest, device, dtype, args.seed)
        with torch.inference_mode():
            m(torch.zeros([1, *sn["input"]["dims"]], dtype=dtype).to(device)).cpu()
        sync(device)
        load.append((time.perf_counter() - t0) * 1000)
        del m
        if device.type == "cuda":
            torch.cuda.empty_cache()

    per_subnet: dict[str, dict] = {}
    total = len(subnets) * len(batches)
    step = 0
    t_all = time.perf_counter()
    for s in subnets:
        model = build(s, device, dtype, args.seed)
        points = []
        for b in batches:
            step += 1
            host = torch.rand([b, *sn["input"]["dims"]], generator=torch.Generator().manual_seed(b), dtype=torch.float32)
            host = host.to(dtype)
            xs = time_batch(model, host, device, args)
            points.append(
                {
                    "batch": b,
                    "cores": 1,
                    "p50_ms": quantile(xs, 0.5),
                    "p99_ms": quantile(xs, 0.99),
                    "mean_ms": float(np.mean(xs)),
                    "samples": len(xs),
                }
            )
            print(
                f"[{step}/{total}] {args.task} {s['name']} batch {b}: p50 {points[-1]['p50_ms']:.3f} ms, "
                f"p99 {points[-1]['p99_ms']:.3f} ms ({len(xs)} samples)",
                file=sys.stderr,
                flush=True,
            )
        per_subnet[s["name"]] = {"points": points, "fit": fits(points), "infaas": infaas(points)}
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()

    default = sn["default_subnet"] if sn["default_subnet"] in per_subnet else subnets[-1]["name"]
    top = per_subnet[default]
    stat = {"p50": quantile(load, 0.5), "max": max(load), "samples": load}
    gpu_mem = (
        f", peak device memory {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB" if device.type == "cuda" else ""
    )
    method = (
        f"tools/gpu/profile_subnets.py: each served subnet of {args.task} (tools/gpu/subnets.json, from "
        f"src/zoo/supernet/*-arch.ts) as a PyTorch {torch.__version__} module with seeded random weights, "
        f"{args.dtype}, eager, cudnn.benchmark={bool(args.cudnn_benchmark)}, on {device}; a batch timed as served "
        f"(host-to-device copy of the input, forward with softmax, device-to-host copy of the output, synchronise; "
        f"wall clock), {args.warmup} warm-up runs, then back to back for at least {args.min_samples} samples and "
        f"{args.budget_ms:g} ms; 'cores' = 1 means one {device.type} device; the fits are β·b + ζ (α = γ = 0: one "
        f"device, no core count to separate); load_ms = build + move + one batch of the largest subnet; "
        f"resize_ms repeats load_ms (a GPU instance is not resized in place){gpu_mem}"
    )
    profile = {
        "task": args.task,
        "variant": sn["variant"],
        "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z"),
        "machine": machine(device),
        "method": method,
        "settings": {"warmup": args.warmup, "min_samples": args.min_samples, "budget_ms": args.budget_ms},
        "points": top["points"],
        "load_ms": stat,
        "resize_ms": stat,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "fit": top["fit"],
        "infaas": top["infaas"],
        "subnets": per_subnet,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(profile, indent=1) + "\n")
    print(
        f"profile_subnets: {len(per_subnet)} subnets x {len(batches)} batch sizes in "
        f"{time.perf_counter() - t_all:.0f} s; wrote {out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
