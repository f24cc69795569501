"""The Open Inference Protocol v2 REST request and response bodies (JSON, and the binary tensor
extension: a JSON header of Inference-Header-Content-Length bytes followed by raw tensor bytes),
for peers that do not speak the protocol themselves (Ray Serve)."""

import json

import numpy as np

NP_OF_OIP = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32, "UINT8": np.uint8}


class BadRequest(ValueError):
    pass


def decode_request(body: bytes, header_length: str | None, input_name: str) -> tuple[np.ndarray, bool]:
    """The one input tensor, and whether the client asked for a binary output."""
    json_len = len(body) if header_length is None else int(header_length)
    try:
        req = json.loads(body[:json_len])
    except ValueError as e:
        raise BadRequest(f"request body is not JSON: {e}") from e
    inputs = req.get("inputs") or []
    tensor = next((t for t in inputs if t.get("name") == input_name), None)
    if tensor is None:
        raise BadRequest(f"request has no input '{input_name}'")
    dtype = NP_OF_OIP.get(tensor.get("datatype"))
    if dtype is None:
        raise BadRequest(f"unsupported datatype {tensor.get('datatype')}")
    shape = tensor.get("shape") or []
    size = (tensor.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        raw = body[json_len : json_len + int(size)]
        x = np.frombuffer(raw, dtype=dtype)
    else:
        x = np.asarray(tensor.get("data"), dtype=dtype)
    try:
        x = x.reshape(shape)
    except ValueError as e:
        raise BadRequest(f"input '{input_name}': {e}") from e
    params = req.get("parameters") or {}
    outputs = req.get("outputs") or []
    binary_out = bool(params.get("binary_data_output")) or any(
        (o.get("parameters") or {}).get("binary_data") for o in outputs
    )
    return x, binary_out


def encode_response(
    model: str, output_name: str, datatype: str, y: np.ndarray, binary: bool
) -> tuple[bytes, dict[str, str]]:
    out = {"name": output_name, "datatype": datatype, "shape": list(y.shape)}
    if not binary:
        out["data"] = y.ravel().tolist()
        return json.dumps({"model_name": model, "outputs": [out]}).encode(), {"content-type": "application/json"}
    raw = np.ascontiguousarray(y).tobytes()
    out["parameters"] = {"binary_data_size": len(raw)}
    head = json.dumps({"model_name": model, "outputs": [out]}).encode()
    return head + raw, {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(head)),
    }
