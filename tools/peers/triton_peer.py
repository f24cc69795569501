"""Triton Inference Server as PyTriton runs it: the tritonserver binary that nvidia-pytriton
bundles (C++ HTTP/gRPC front ends, dynamic batcher) with the model bound as a Python callable
that runs Python onnxruntime (PyTriton's proxy: Triton's Python backend hands each batch to this
process over shared memory). The package carries no C++ onnxruntime backend, so that is how an
ONNX model is served with it. Dynamic batching as Triton's docs advise to start: on, no extra
queue delay, max batch = the variant's max_batch.
usage: triton_peer.py --model-file F --name N --max-batch B --http-port P --grpc-port G [--queue-delay-us 0]
Prints "ready" on stdout once the model answers; SIGTERM stops it."""

import argparse
import os
import signal
import sys
import sysconfig
import time

# Triton's Python-backend stub links libpython by soname; without this it may load the system's
# libpython under this interpreter's standard library (3.11.2 vs 3.11.7 here: the stub fails to start).
_libdir = sysconfig.get_config_var("LIBDIR")
if _libdir and _libdir not in os.environ.get("LD_LIBRARY_PATH", "").split(":"):
    os.environ["LD_LIBRARY_PATH"] = ":".join(p for p in (_libdir, os.environ.get("LD_LIBRARY_PATH")) if p)

import numpy as np  # noqa: E402
from onnx_model import OnnxModel  # noqa: E402
from pytriton.decorators import batch  # noqa: E402
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor  # noqa: E402
from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-file", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--max-batch", type=int, required=True)
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--grpc-port", type=int, required=True)
    ap.add_argument("--metrics-port", type=int, default=0)
    ap.add_argument("--queue-delay-us", type=int, default=0)
    a = ap.parse_args()
    model = OnnxModel(a.model_file)

    @batch
    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        return {model.output_name: model.run(inputs[model.input_name])}

    config = TritonConfig(
        http_address="127.0.0.1",
        http_port=a.http_port,
        grpc_address="127.0.0.1",
        grpc_port=a.grpc_port,
        allow_metrics=a.metrics_port > 0,
        metrics_port=a.metrics_port or None,
        log_verbose=0,
    )
    # loopback only; perf_analyzer reads the statistics endpoint PyTriton guards by default
    security = TritonSecurityConfig(restricted_endpoints=[])
    with Triton(config=config, security_config=security) as triton:
        triton.bind(
            model_name=a.name,
            infer_func=infer,
            inputs=[Tensor(name=model.input_name, dtype=model.input_dtype, shape=tuple(model.row_shape))],
            outputs=[Tensor(name=model.output_name, dtype=model.output_dtype, shape=tuple(model.out_row_shape))],
            config=ModelConfig(
                max_batch_size=a.max_batch,
                batcher=DynamicBatcher(max_queue_delay_microseconds=a.queue_delay_us),
            ),
            strict=False,
        )
        triton.run()
        print("ready", flush=True)
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        while not stop and triton.is_alive():
            time.sleep(0.2)
    sys.exit(0)


if __name__ == "__main__":
    main()
