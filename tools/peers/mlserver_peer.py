"""MLServer serving an ONNX model through the custom runtime in mlserver_onnx.py: writes the
settings MLServer's docs describe (settings.json, model-settings.json with adaptive batching) into
a temporary folder and runs `mlserver start` there in this process's place.
usage: mlserver_peer.py --model-file F --name N --max-batch B --http-port P --grpc-port G
       [--max-batch-time-s 0.001] [--workers 1]"""

import argparse
import json
import os
import shutil
import sys
import tempfile

from onnx_model import OnnxModel


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-file", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--max-batch", type=int, required=True)
    ap.add_argument("--max-batch-time-s", type=float, default=0.001)
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--grpc-port", type=int, required=True)
    ap.add_argument("--workers", type=int, default=1, help="MLServer parallel_workers (its default: 1)")
    a = ap.parse_args()
    model = OnnxModel(os.path.abspath(a.model_file))  # fails here, clearly, on a bad model file
    here = os.path.dirname(os.path.abspath(__file__))
    # one folder per port, emptied first: MLServer also writes its .envs and .metrics there
    folder = os.path.join(tempfile.gettempdir(), f"sloserve-mlserver-{a.http_port}")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    with open(os.path.join(folder, "settings.json"), "w") as f:
        json.dump(
            {
                "host": "127.0.0.1",
                "http_port": a.http_port,
                "grpc_port": a.grpc_port,
                "metrics_endpoint": None,
                "parallel_workers": a.workers,
                "debug": False,
            },
            f,
        )
    with open(os.path.join(folder, "model-settings.json"), "w") as f:
        json.dump(
            {
                "name": a.name,
                "implementation": "mlserver_onnx.OnnxRuntimeModel",
                "max_batch_size": a.max_batch,
                "max_batch_time": a.max_batch_time_s,
                "inputs": [{"name": model.input_name, "datatype": model.input_datatype, "shape": [-1, *model.row_shape]}],
                "outputs": [
                    {"name": model.output_name, "datatype": model.output_datatype, "shape": [-1, *model.out_row_shape]}
                ],
                "parameters": {"uri": os.path.abspath(a.model_file)},
            },
            f,
        )
    del model
    env = dict(os.environ, PYTHONPATH=":".join(p for p in (here, os.environ.get("PYTHONPATH")) if p))
    mlserver = shutil.which("mlserver", path=os.path.dirname(sys.executable))
    if mlserver is None:
        sys.exit("mlserver is not installed next to this interpreter; run scripts/peers-env.sh")
    os.chdir(folder)
    os.execve(mlserver, [mlserver, "start", folder], env)


if __name__ == "__main__":
    main()
