"""One ONNX model in Python onnxruntime, opened the way sloserve's engine opens it (one intra-op
thread per core, sequential execution, every graph optimisation), so that every Python peer runs
the same kernels on the same thread budget as sloserve's onnxruntime-node instance."""

import os

import numpy as np
import onnxruntime as ort

NP_OF_ORT = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(uint8)": np.uint8,
}
OIP_OF_NP = {
    np.float32: "FP32",
    np.float64: "FP64",
    np.int64: "INT64",
    np.int32: "INT32",
    np.uint8: "UINT8",
}


class OnnxModel:
    def __init__(self, path: str, threads: int | None = None):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no ONNX model at {path}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or int(os.environ.get("PEER_THREADS", "1"))
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()
        out = self.session.get_outputs()
        if len(inp) != 1 or len(out) != 1:
            raise ValueError(f"{path}: the peers serve one-input one-output models, this has {len(inp)} and {len(out)}")
        self.input_name = inp[0].name
        self.output_name = out[0].name
        self.input_dtype = NP_OF_ORT[inp[0].type]
        self.output_dtype = NP_OF_ORT[out[0].type]
        # per-row shapes: the leading symbolic dimension is the batch
        self.row_shape = [int(d) for d in inp[0].shape[1:]]
        self.out_row_shape = [int(d) for d in out[0].shape[1:]]

    @property
    def input_datatype(self) -> str:
        return OIP_OF_NP[self.input_dtype]

    @property
    def output_datatype(self) -> str:
        return OIP_OF_NP[self.output_dtype]

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: batch})[0]

    def zeros(self, rows: int) -> np.ndarray:
        return np.random.default_rng(1).random((rows, *self.row_shape)).astype(self.input_dtype)
