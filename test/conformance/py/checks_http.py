"""Triton's own HTTP client (tritonclient.http, and its asyncio twin) against sloserve, unchanged."""
import asyncio
import gzip
import json
import time

import numpy as np
import tritonclient.http as httpclient
import tritonclient.http.aio as aiohttpclient
from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2
from tritonclient.utils import InferenceServerException

from common import (
    AUTH,
    DIGITS_VERSIONS,
    MLP_SMALL,
    HTTP,
    IMAGES,
    LABELS,
    RAW,
    SPARE_TASK,
    accuracy,
    expect_error,
    rest,
)


def client(**kw) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(HTTP, **kw)


def digits_input(n=8, binary=True, offset=0):
    x = httpclient.InferInput("image", [n, 1, 28, 28], "FP32")
    x.set_data_from_numpy(IMAGES[offset : offset + n], binary_data=binary)
    return x


def check_health():
    c = client()
    assert c.is_server_live() is True
    assert c.is_server_ready() is True


def check_server_metadata():
    meta = client().get_server_metadata()
    assert meta["name"] == "sloserve"
    for ext in ["binary_tensor_data", "model_repository", "statistics", "model_configuration", "classification"]:
        assert ext in meta["extensions"], f"extension {ext} missing from {meta['extensions']}"


def check_model_metadata():
    c = client()
    m = c.get_model_metadata("digits")
    assert m["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 28, 28]}]
    assert m["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]
    assert m["versions"] == DIGITS_VERSIONS, m["versions"]
    assert c.get_model_metadata("digits", "mlp-small")["versions"] == ["mlp-small"]
    assert c.get_model_metadata("mnist-e2e")["platform"] == "ensemble"
    expect_error(lambda: c.get_model_metadata("nope"), "unknown model 'nope'")


def check_model_config_parses_as_triton_model_config():
    """Each config must be a valid Triton ModelConfig: protobuf's ParseDict refuses unknown fields and types."""
    c = client()
    for args in [("digits",), ("digits", "mlp-small"), ("digits", str(MLP_SMALL)), ("mnist-e2e",), ("mnist-prep",)]:
        config = c.get_model_config(*args)
        parsed = json_format.ParseDict(config, model_config_pb2.ModelConfig())
        assert parsed.name == args[0]
        assert parsed.max_batch_size >= 1
    digits = json_format.ParseDict(c.get_model_config("digits"), model_config_pb2.ModelConfig())
    assert list(digits.version_policy.specific.versions) == list(range(1, len(DIGITS_VERSIONS) + 1))
    pinned = json_format.ParseDict(c.get_model_config("digits", "mlp-small"), model_config_pb2.ModelConfig())
    assert list(pinned.version_policy.specific.versions) == [MLP_SMALL]


def check_model_ready():
    c = client()
    assert c.is_model_ready("digits") is True
    assert c.is_model_ready("digits", "mlp-small") is True
    assert c.is_model_ready("digits", str(MLP_SMALL)) is True
    assert c.is_model_ready("mnist-e2e") is True
    assert c.is_model_ready("nope") is False
    assert c.is_model_ready("digits", "nope") is False


def check_model_ready_body_names_the_model():
    status, _, body = rest("GET", "/v2/models/digits/ready")
    assert status == 200
    assert json.loads(body) == {"name": "digits", "ready": True}, body


def check_infer_json():
    c = client()
    outs = [httpclient.InferRequestedOutput("probabilities", binary_data=False)]
    r = c.infer("digits", [digits_input(16, binary=False)], outputs=outs)
    p = r.as_numpy("probabilities")
    assert p.shape == (16, 10) and p.dtype == np.float32
    assert accuracy(p, LABELS[:16]) >= 0.8
    assert r.get_output("probabilities")["data"], "JSON output expected"


def check_infer_binary():
    c = client()
    r = c.infer("digits", [digits_input(16)], outputs=[httpclient.InferRequestedOutput("probabilities")])
    assert "parameters" in r.get_output("probabilities"), "binary output expected"
    assert accuracy(r.as_numpy("probabilities"), LABELS[:16]) >= 0.8
    # no outputs named: the client asks binary_data_output for all of them
    r = c.infer("digits", [digits_input(4)], model_version="mlp-small", request_id="req-7")
    resp = r.get_response()
    assert resp["id"] == "req-7" and resp["model_version"] == "mlp-small"
    assert r.as_numpy("probabilities").shape == (4, 10)


def check_infer_pinned_by_version_number():
    r = client().infer("digits", [digits_input(2)], model_version=str(MLP_SMALL))
    assert r.get_response()["model_version"] == "mlp-small"


def check_infer_pipeline():
    x = httpclient.InferInput("raw", [8, 28, 28], "UINT8")
    x.set_data_from_numpy(RAW[:8])
    r = client().infer("mnist-e2e", [x])
    assert accuracy(r.as_numpy("probabilities"), LABELS[:8]) >= 0.75


def check_per_output_binary_flag_wins_over_binary_data_output():
    body = {
        "inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28], "data": IMAGES[0].ravel().tolist()}],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": False}}],
        "parameters": {"binary_data_output": True},
    }
    status, headers, raw = rest("POST", "/v2/models/digits/infer", body, {"Content-Type": "application/json"})
    assert status == 200, raw
    assert "Inference-Header-Content-Length" not in headers, "the per-output binary_data: false must win"
    out = json.loads(raw)["outputs"][0]
    assert len(out["data"]) == 10


def check_infer_async():
    c = client(concurrency=4)
    pending = [c.async_infer("digits", [digits_input(4, offset=4 * i)]) for i in range(6)]
    for i, p in enumerate(pending):
        assert accuracy(p.get_result().as_numpy("probabilities"), LABELS[4 * i : 4 * i + 4]) >= 0.5


def check_infer_parameters():
    r = client().infer("digits", [digits_input(1)], parameters={"slo_ms": 200, "min_accuracy": 0.9})
    params = r.get_response()["parameters"]
    assert params["variant"] in DIGITS_VERSIONS
    assert params["slo_met"] is True
    expect_error(
        lambda: client().infer("digits", [digits_input(1)], parameters={"min_accuracy": 1.5}), "min_accuracy"
    )


def check_priority_and_timeout():
    c = client()
    r = c.infer("digits", [digits_input(1)], priority=1, timeout=2_000_000)
    assert r.as_numpy("probabilities").shape == (1, 10)
    # a 1 µs budget cannot be met: sloserve answers at once instead of serving it late
    expect_error(lambda: c.infer("digits", [digits_input(1)], timeout=1), "deadline")


def check_request_compression():
    c = client()
    for algo in ["gzip", "deflate"]:
        r = c.infer("digits", [digits_input(8)], request_compression_algorithm=algo)
        assert accuracy(r.as_numpy("probabilities"), LABELS[:8]) >= 0.75, algo
        r = c.infer("digits", [digits_input(8, binary=False)], request_compression_algorithm=algo)
        assert r.as_numpy("probabilities").shape == (8, 10), algo


def check_response_compression():
    c = client()
    for algo in ["gzip", "deflate"]:
        r = c.infer("digits", [digits_input(8)], response_compression_algorithm=algo)
        assert accuracy(r.as_numpy("probabilities"), LABELS[:8]) >= 0.75, algo
    # a JSON answer of 32 rows (over sloserve's 1-KiB threshold for compressing)
    body = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [32, 1, 28, 28], "data": [0.0] * 784 * 32}]}
    status, headers, raw = rest(
        "POST", "/v2/models/digits/infer", body, {"Content-Type": "application/json", "Accept-Encoding": "gzip"}
    )
    lower = {k.lower(): v for k, v in headers.items()}
    assert status == 200 and lower.get("content-encoding") == "gzip", headers
    assert json.loads(gzip.decompress(raw))["outputs"][0]["name"] == "probabilities"


def check_corrupt_compressed_body_is_a_clear_400():
    status, _, raw = rest(
        "POST", "/v2/models/digits/infer", b"not gzip at all", {"Content-Encoding": "gzip"}
    )
    assert status == 400
    msg = json.loads(raw)["error"]
    assert "gzip" in msg and msg.isprintable(), msg


def check_client_timeouts():
    c = client(network_timeout=0.000001)
    t0 = time.monotonic()
    expect_error(lambda: c.infer("digits", [digits_input(1)]), "timed out")
    assert time.monotonic() - t0 < 5
    assert client().is_server_live() is True


def check_errors():
    c = client()
    expect_error(lambda: c.infer("nope", [digits_input(1)]), "unknown model 'nope'")
    x = httpclient.InferInput("image", [1, 28, 28], "FP32")
    x.set_data_from_numpy(IMAGES[0])
    expect_error(lambda: c.infer("digits", [x]), "shape")
    y = httpclient.InferInput("image", [1, 1, 28, 28], "FP64")
    y.set_data_from_numpy(IMAGES[:1].astype(np.float64))
    expect_error(lambda: c.infer("digits", [y]), "FP64", "FP32")
    expect_error(
        lambda: c.infer("digits", [digits_input(1)], outputs=[httpclient.InferRequestedOutput("logits")]),
        "unknown output 'logits'",
    )
    expect_error(lambda: c.infer("digits", [digits_input(1)], model_version=str(len(DIGITS_VERSIONS) + 1)), "no variant")


def check_json_out_of_range_integers_are_refused():
    for value in [300, -1]:
        raw = [int(v) for v in RAW[0].ravel()]
        raw[5] = value
        body = {"inputs": [{"name": "raw", "datatype": "UINT8", "shape": [1, 28, 28], "data": raw}]}
        status, _, msg = rest("POST", "/v2/models/mnist-e2e/infer", body, {"Content-Type": "application/json"})
        assert status == 400, (value, status, msg)
        assert "out of range" in json.loads(msg)["error"] and "UINT8" in json.loads(msg)["error"]


def check_classification():
    c = client()
    out = httpclient.InferRequestedOutput("probabilities", binary_data=False, class_count=3)
    r = c.infer("digits", [digits_input(4, binary=False)], outputs=[out])
    top = r.as_numpy("probabilities")
    assert top.shape == (4, 3), top.shape
    probs = c.infer("digits", [digits_input(4)], model_version=r.get_response()["model_version"]).as_numpy(
        "probabilities"
    )
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    for row, p in zip(top, probs):
        parts = [(s.decode() if isinstance(s, bytes) else s).split(":") for s in row]
        idx = [int(x[1]) for x in parts]
        assert idx == list(np.argsort(-p)[:3]), (parts, p)
        assert [x[2] for x in parts] == [names[i] for i in idx]
        assert abs(float(parts[0][0]) - p[idx[0]]) < 1e-5
    # binary too; more classes than the output has are capped at its size, as Triton does
    out = httpclient.InferRequestedOutput("probabilities", binary_data=True, class_count=20)
    r = c.infer("digits", [digits_input(2)], outputs=[out])
    assert r.as_numpy("probabilities").shape == (2, 10)
    bad = httpclient.InferRequestedOutput("probabilities", class_count=-2)
    expect_error(lambda: c.infer("digits", [digits_input(1)], outputs=[bad]), "classification")
    # not (yet) on pipelines: refused, never ignored
    raw = httpclient.InferInput("raw", [1, 28, 28], "UINT8")
    raw.set_data_from_numpy(RAW[:1])
    top = httpclient.InferRequestedOutput("probabilities", class_count=2)
    expect_error(lambda: c.infer("mnist-e2e", [raw], outputs=[top]), "classification", "pipeline")


def check_statistics():
    c = client()
    c.infer("digits", [digits_input(2)], model_version="mlp-small")
    stats = c.get_inference_statistics("digits")["model_stats"]
    assert stats, "no statistics for digits"
    for s in stats:
        assert s["name"] == "digits"
        if s["version"] != "":  # failures: see check_statistics_have_no_empty_versions
            int(s["version"])  # perf_analyzer parses versions as integers (std::stoll)
    mine = c.get_inference_statistics("digits", "mlp-small")["model_stats"]
    assert len(mine) == 1 and mine[0]["version"] == str(MLP_SMALL), mine
    assert mine[0]["inference_stats"]["success"]["count"] >= 1
    assert c.get_inference_statistics("digits", str(MLP_SMALL))["model_stats"][0]["version"] == str(MLP_SMALL)
    assert len(c.get_inference_statistics()["model_stats"]) >= 1
    expect_error(lambda: c.get_inference_statistics("nope"), "unknown model")


def check_statistics_of_pipelines():
    x = httpclient.InferInput("raw", [2, 28, 28], "UINT8")
    x.set_data_from_numpy(RAW[:2])
    c = client()
    c.infer("mnist-e2e", [x])
    stats = c.get_inference_statistics("mnist-e2e")["model_stats"]
    assert stats and stats[0]["inference_stats"]["success"]["count"] >= 1, stats


def check_statistics_have_no_empty_versions():
    c = client()
    expect_error(lambda: c.infer("digits", [digits_input(1)], timeout=1), "deadline")
    for s in c.get_inference_statistics()["model_stats"]:
        assert s["version"] != "", s


def check_repository_index():
    index = client().get_model_repository_index()
    by_name = {m["name"]: m for m in index}
    for name in ["digits", "mnist-prep", "mnist-e2e", SPARE_TASK]:
        assert name in by_name, index
    assert by_name["digits"]["state"] == "READY"


def check_load_unload_need_the_admin_token():
    c = client()
    expect_error(lambda: c.unload_model(SPARE_TASK), "bearer")
    expect_error(lambda: c.load_model(SPARE_TASK), "bearer")
    expect_error(lambda: c.unload_model(SPARE_TASK, headers={"Authorization": "Bearer wrong"}), "bearer")
    assert c.is_model_ready(SPARE_TASK) is True


def check_load_unload_with_the_admin_token():
    c = client()
    c.unload_model(SPARE_TASK, headers=AUTH)
    assert c.is_model_ready(SPARE_TASK) is False
    c.unload_model(SPARE_TASK, headers=AUTH, unload_dependents=True)  # already unloaded: still fine
    c.load_model(SPARE_TASK, headers=AUTH)
    assert c.is_model_ready(SPARE_TASK) is True
    expect_error(lambda: c.load_model("nope", headers=AUTH), "nope")


def check_load_with_a_config_override_is_refused():
    c = client()
    expect_error(
        lambda: c.load_model(SPARE_TASK, headers=AUTH, config=json.dumps({"max_batch_size": 4})), "config"
    )
    expect_error(
        lambda: c.load_model(SPARE_TASK, headers=AUTH, config="{}", files={"file:1/model.onnx": b"x"}), "file"
    )
    assert c.is_model_ready(SPARE_TASK) is True


def check_aio_client():
    async def run():
        async with aiohttpclient.InferenceServerClient(HTTP) as c:
            assert await c.is_server_live()
            assert await c.is_model_ready("digits")
            assert not await c.is_model_ready("nope")
            assert (await c.get_model_metadata("digits"))["name"] == "digits"
            config = await c.get_model_config("digits")
            json_format.ParseDict(config, model_config_pb2.ModelConfig())
            x = aiohttpclient.InferInput("image", [8, 1, 28, 28], "FP32")
            x.set_data_from_numpy(IMAGES[:8])
            results = await asyncio.gather(*[c.infer("digits", [x]) for _ in range(4)])
            for r in results:
                assert accuracy(r.as_numpy("probabilities"), LABELS[:8]) >= 0.75
            r = await c.infer("digits", [x], request_compression_algorithm="gzip")
            assert r.as_numpy("probabilities").shape == (8, 10)
            assert (await c.get_inference_statistics("digits"))["model_stats"]
            try:
                await c.infer("nope", [x])
                raise AssertionError("unknown model accepted")
            except InferenceServerException as err:
                assert "unknown model" in str(err)

    asyncio.run(run())
