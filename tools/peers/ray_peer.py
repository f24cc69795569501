"""Ray Serve serving an ONNX model with Python onnxruntime: one deployment, @serve.batch dynamic
batching, a FastAPI ingress that speaks the Open Inference Protocol v2 REST subset the clients use
(Ray Serve has no OIP front end of its own). Access logs off, as Ray's performance guide advises.
  static:    --replicas 1
  autoscale: --autoscale --max-replicas N --target-ongoing R --max-ongoing M --upscale-delay-s U
             --downscale-delay-s D (Ray Serve's own autoscaler)
Prints "ready" once serving; with --report-replicas then one JSON line a second:
{"t": unix_s, "replicas": running} (off for the data-path runs: polling costs the driver CPU).
SIGTERM shuts Serve and Ray down."""

import argparse
import asyncio
import json
import os
import signal
import sys
import time

import numpy as np
import ray
from fastapi import FastAPI, Request, Response
from ray import serve
from ray.serve.config import AutoscalingConfig
from ray.serve.schema import LoggingConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oip_rest import BadRequest, decode_request, encode_response  # noqa: E402
from onnx_model import OnnxModel  # noqa: E402

app = FastAPI()


@serve.deployment
@serve.ingress(app)
class OnnxDeployment:
    def __init__(self, path: str, name: str, max_batch: int, batch_wait_s: float):
        self.model = OnnxModel(path)
        self.name = name
        self.max_batch = max_batch
        self.run_batch.set_max_batch_size(max_batch)
        self.run_batch.set_batch_wait_timeout_s(batch_wait_s)

    @serve.batch(max_batch_size=1, batch_wait_timeout_s=0.0)
    async def run_batch(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        y = self.model.run(np.concatenate(xs) if len(xs) > 1 else xs[0])
        out, at = [], 0
        for x in xs:
            out.append(y[at : at + len(x)])
            at += len(x)
        return out

    def _meta(self) -> dict:
        m = self.model
        return {
            "name": self.name,
            "versions": ["1"],
            "platform": "onnxruntime_onnx",
            "inputs": [{"name": m.input_name, "datatype": m.input_datatype, "shape": [-1, *m.row_shape]}],
            "outputs": [{"name": m.output_name, "datatype": m.output_datatype, "shape": [-1, *m.out_row_shape]}],
        }

    @app.get("/v2")
    def server_metadata(self) -> dict:
        return {"name": "ray-serve", "version": ray.__version__, "extensions": ["binary_tensor_data"]}

    @app.get("/v2/health/ready")
    def ready(self) -> dict:
        return {}

    @app.get("/v2/health/live")
    def live(self) -> dict:
        return {}

    @app.get("/v2/models/{name}")
    def metadata(self, name: str) -> Response:
        if name != self.name:
            return Response(json.dumps({"error": f"unknown model '{name}'"}), status_code=404)
        return Response(json.dumps(self._meta()), media_type="application/json")

    @app.get("/v2/models/{name}/ready")
    def model_ready(self, name: str) -> Response:
        return Response(status_code=200 if name == self.name else 404)

    @app.get("/v2/models/{name}/config")
    def config(self, name: str) -> dict:
        m = self.model
        return {
            "name": self.name,
            "platform": "onnxruntime_onnx",
            "max_batch_size": self.max_batch,
            "input": [{"name": m.input_name, "data_type": "TYPE_" + m.input_datatype, "dims": m.row_shape}],
            "output": [{"name": m.output_name, "data_type": "TYPE_" + m.output_datatype, "dims": m.out_row_shape}],
        }

    @app.post("/v2/models/{name}/infer")
    async def infer(self, name: str, request: Request) -> Response:
        if name != self.name:
            return Response(json.dumps({"error": f"unknown model '{name}'"}), status_code=404)
        body = await request.body()
        try:
            x, binary = decode_request(
                body, request.headers.get("inference-header-content-length"), self.model.input_name
            )
        except BadRequest as e:
            return Response(json.dumps({"error": str(e)}), status_code=400, media_type="application/json")
        y = await self.run_batch(x)
        content, headers = encode_response(self.name, self.model.output_name, self.model.output_datatype, y, binary)
        return Response(content, headers=headers)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-file", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--max-batch", type=int, required=True)
    ap.add_argument("--batch-wait-s", type=float, default=0.0)
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--cpus", type=int, default=1, help="logical CPUs Ray may hand out (the core budget)")
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--autoscale", action="store_true")
    ap.add_argument("--max-replicas", type=int, default=1)
    ap.add_argument("--target-ongoing", type=float, default=2)
    ap.add_argument("--max-ongoing", type=int, default=5)
    ap.add_argument("--upscale-delay-s", type=float, default=30)
    ap.add_argument("--downscale-delay-s", type=float, default=600)
    ap.add_argument("--report-replicas", action="store_true", help="print the running replicas every second")
    a = ap.parse_args()

    ray.init(num_cpus=a.cpus, include_dashboard=False, log_to_driver=False, logging_level="warning")
    serve.start(http_options={"host": "127.0.0.1", "port": a.http_port}, logging_config=LoggingConfig(enable_access_log=False, log_level="WARNING"))
    opts = dict(
        name="onnx",
        ray_actor_options={"num_cpus": 1},
        max_ongoing_requests=a.max_ongoing,
        logging_config=LoggingConfig(enable_access_log=False, log_level="WARNING"),
    )
    if a.autoscale:
        opts["autoscaling_config"] = AutoscalingConfig(
            min_replicas=1,
            initial_replicas=1,
            max_replicas=a.max_replicas,
            target_ongoing_requests=a.target_ongoing,
            upscale_delay_s=a.upscale_delay_s,
            downscale_delay_s=a.downscale_delay_s,
        )
    else:
        opts["num_replicas"] = a.replicas
    serve.run(
        OnnxDeployment.options(**opts).bind(os.path.abspath(a.model_file), a.name, a.max_batch, a.batch_wait_s),
        name="peer",
        route_prefix="/",
    )
    print("ready", flush=True)

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        if not a.report_replicas:
            time.sleep(0.2)
            continue
        try:
            st = serve.status().applications["peer"].deployments["onnx"]
            running = st.replica_states.get("RUNNING", 0)
        except Exception:  # noqa: BLE001 — status is best effort while Serve is busy
            running = -1
        print(json.dumps({"t": time.time(), "replicas": running}), flush=True)
        time.sleep(1)
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
