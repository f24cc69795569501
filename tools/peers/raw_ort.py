"""Raw Python onnxruntime on the cores this process is pinned to, no server around it: the
baseline the Python peers' added latency is measured against. Prints one JSON object:
  points: rows/s, p50/p99 ms per batch size (back to back, as a saturated server would run them)
  lowload: p50/p99 ms of one-row runs spaced --gap-ms apart (as a low-load client sends them)
  cpu_us_per_row_b1: process CPU time per one-row run (back to back)
usage: raw_ort.py MODEL.onnx --max-batch N [--gap-ms 2] [--samples 300] [--budget-s 1.5]"""

import argparse
import json
import time

import numpy as np
from onnx_model import OnnxModel


def batch_grid(max_batch: int) -> list[int]:
    grid, b = [], 1
    while b < max_batch:
        grid.append(b)
        b *= 2
    return grid + [max_batch]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--max-batch", type=int, required=True)
    ap.add_argument("--gap-ms", type=float, default=2.0)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--budget-s", type=float, default=1.5)
    a = ap.parse_args()
    m = OnnxModel(a.model)
    points = []
    for b in batch_grid(a.max_batch):
        x = m.zeros(b)
        for _ in range(3):
            m.run(x)
        lat, end = [], time.perf_counter() + a.budget_s
        while time.perf_counter() < end or len(lat) < 10:
            t0 = time.perf_counter()
            m.run(x)
            lat.append((time.perf_counter() - t0) * 1000)
        points.append(
            {
                "batch": b,
                "p50_ms": float(np.percentile(lat, 50)),
                "p99_ms": float(np.percentile(lat, 99)),
                "rows_per_s": b * len(lat) / (sum(lat) / 1000),
            }
        )
    x = m.zeros(1)
    for _ in range(5):
        m.run(x)
    lat = []
    for _ in range(a.samples):
        t0 = time.perf_counter()
        m.run(x)
        lat.append((time.perf_counter() - t0) * 1000)
        time.sleep(a.gap_ms / 1000)
    # the model's own CPU per one-row run, back to back so that no timer wake-up is counted
    runs = max(200, a.samples)
    cpu0 = time.process_time()
    for _ in range(runs):
        m.run(x)
    cpu = (time.process_time() - cpu0) / runs
    print(
        json.dumps(
            {
                "runtime": "python onnxruntime",
                "points": points,
                "lowload": {"p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99))},
                "cpu_us_per_row_b1": cpu * 1e6,
            }
        )
    )


if __name__ == "__main__":
    main()
