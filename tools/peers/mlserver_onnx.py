"""MLServer runtime for ONNX models through Python onnxruntime. MLServer ships no ONNX runtime
package; its docs' way for another framework is a custom MLModel like this one. Batching is
MLServer's adaptive batching (max_batch_size / max_batch_time in model-settings.json), which
hands predict() one request whose inputs are the queued requests' rows stacked."""

import os
import sys

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.errors import InferenceError
from mlserver.types import InferenceRequest, InferenceResponse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_model import OnnxModel  # noqa: E402


class OnnxRuntimeModel(MLModel):
    async def load(self) -> bool:
        self.model = OnnxModel(self.settings.parameters.uri)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        inp = next((i for i in payload.inputs if i.name == self.model.input_name), None)
        if inp is None:
            raise InferenceError(f"request has no input '{self.model.input_name}'")
        x = NumpyCodec.decode_input(inp).astype(self.model.input_dtype, copy=False)
        y = self.model.run(x)
        return InferenceResponse(
            model_name=self.name,
            outputs=[NumpyCodec.encode_output(self.model.output_name, y)],
        )
