"""Triton's own gRPC client (tritonclient.grpc, and its asyncio twin) against sloserve, unchanged."""
import asyncio
import json
import queue

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as aiogrpcclient
from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2
from tritonclient.utils import InferenceServerException

from common import AUTH, DIGITS_VERSIONS, MLP_SMALL, GRPC, IMAGES, LABELS, RAW, SPARE_TASK, accuracy, expect_error

GRPC_AUTH = {k.lower(): v for k, v in AUTH.items()}


def client() -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(GRPC)


def digits_input(n=8, offset=0):
    x = grpcclient.InferInput("image", [n, 1, 28, 28], "FP32")
    x.set_data_from_numpy(IMAGES[offset : offset + n])
    return x


def check_health():
    c = client()
    assert c.is_server_live() is True
    assert c.is_server_ready() is True


def check_server_metadata():
    meta = client().get_server_metadata(as_json=True)
    assert meta["name"] == "sloserve"
    assert "classification" in meta["extensions"]


def check_model_metadata():
    c = client()
    m = c.get_model_metadata("digits", as_json=True)
    assert m["versions"] == DIGITS_VERSIONS
    assert m["inputs"] == [{"name": "image", "datatype": "FP32", "shape": ["-1", "1", "28", "28"]}]
    assert c.get_model_metadata("mnist-e2e").platform == "ensemble"
    expect_error(lambda: c.get_model_metadata("nope"), "unknown model")


def check_model_config():
    c = client()
    config = c.get_model_config("digits").config
    assert isinstance(config, model_config_pb2.ModelConfig)
    assert config.max_batch_size >= 1 and config.input[0].name == "image"
    assert list(config.version_policy.specific.versions) == list(range(1, len(DIGITS_VERSIONS) + 1))
    assert list(c.get_model_config("digits", "mlp-small").config.version_policy.specific.versions) == [MLP_SMALL]
    ensemble = c.get_model_config("mnist-e2e", as_json=True)["config"]
    assert [s["model_name"] for s in ensemble["ensemble_scheduling"]["step"]] == ["mnist-prep", "digits"]
    json_format.ParseDict(ensemble, model_config_pb2.ModelConfig())


def check_model_ready():
    c = client()
    assert c.is_model_ready("digits") is True
    assert c.is_model_ready("digits", "mlp-small") is True
    assert c.is_model_ready("digits", str(MLP_SMALL)) is True
    assert c.is_model_ready("mnist-e2e") is True
    # Triton answers OK with ready=false for a model it does not know; the client returns False
    assert c.is_model_ready("nope") is False
    assert c.is_model_ready("digits", "nope") is False


def check_infer():
    c = client()
    r = c.infer("digits", [digits_input(16)], outputs=[grpcclient.InferRequestedOutput("probabilities")])
    p = r.as_numpy("probabilities")
    assert p.shape == (16, 10) and p.dtype == np.float32
    assert accuracy(p, LABELS[:16]) >= 0.8
    r = c.infer("digits", [digits_input(2)], model_version="mlp-small", request_id="g-1")
    resp = r.get_response(as_json=True)
    assert resp["id"] == "g-1" and resp["model_version"] == "mlp-small"
    assert c.infer("digits", [digits_input(1)], model_version=str(MLP_SMALL)).get_response().model_version == "mlp-small"


def check_infer_pipeline():
    x = grpcclient.InferInput("raw", [8, 28, 28], "UINT8")
    x.set_data_from_numpy(RAW[:8])
    assert accuracy(client().infer("mnist-e2e", [x]).as_numpy("probabilities"), LABELS[:8]) >= 0.75


def check_infer_async():
    c = client()
    done = queue.Queue()
    for i in range(6):
        c.async_infer("digits", [digits_input(4, 4 * i)], callback=lambda result, error, i=i: done.put((i, result, error)))
    for _ in range(6):
        i, r, e = done.get(timeout=30)
        assert e is None, e
        assert accuracy(r.as_numpy("probabilities"), LABELS[4 * i : 4 * i + 4]) >= 0.5


def check_infer_parameters():
    c = client()
    r = c.infer("digits", [digits_input(1)], parameters={"slo_ms": 200, "min_accuracy": 0.9})
    params = r.get_response(as_json=True)["parameters"]
    assert params["variant"]["string_param"] in DIGITS_VERSIONS
    assert params["slo_met"]["bool_param"] is True
    expect_error(lambda: c.infer("digits", [digits_input(1)], parameters={"min_accuracy": 1.5}), "min_accuracy")


def check_priority_and_timeout():
    c = client()
    assert c.infer("digits", [digits_input(1)], priority=1, timeout=2_000_000).as_numpy("probabilities") is not None
    err = expect_error(lambda: c.infer("digits", [digits_input(1)], timeout=1), "deadline")
    assert err.status() == "StatusCode.DEADLINE_EXCEEDED", err.status()


def check_compression():
    c = client()
    for algo in ["gzip", "deflate"]:
        r = c.infer("digits", [digits_input(8)], compression_algorithm=algo)
        assert accuracy(r.as_numpy("probabilities"), LABELS[:8]) >= 0.75, algo


def check_client_timeout():
    c = client()
    err = expect_error(lambda: c.infer("digits", [digits_input(64)], client_timeout=0.0001), "deadline")
    assert err.status() == "StatusCode.DEADLINE_EXCEEDED"
    assert c.is_server_live(client_timeout=5) is True


def check_errors():
    c = client()
    err = expect_error(lambda: c.infer("nope", [digits_input(1)]), "unknown model 'nope'")
    assert err.status() == "StatusCode.NOT_FOUND"
    x = grpcclient.InferInput("image", [1, 28, 28], "FP32")
    x.set_data_from_numpy(IMAGES[0])
    err = expect_error(lambda: c.infer("digits", [x]), "shape")
    assert err.status() == "StatusCode.INVALID_ARGUMENT"
    expect_error(
        lambda: c.infer("digits", [digits_input(1)], outputs=[grpcclient.InferRequestedOutput("logits")]),
        "unknown output 'logits'",
    )


def check_classification():
    c = client()
    out = grpcclient.InferRequestedOutput("probabilities", class_count=2)
    r = c.infer("digits", [digits_input(4)], outputs=[out], model_version="mlp-small")
    top = r.as_numpy("probabilities")
    assert top.shape == (4, 2), top.shape
    probs = c.infer("digits", [digits_input(4)], model_version="mlp-small").as_numpy("probabilities")
    for row, p in zip(top, probs):
        idx = [int(s.decode().split(":")[1]) for s in row]
        assert idx == list(np.argsort(-p)[:2]), (row, p)


def check_statistics():
    c = client()
    c.infer("digits", [digits_input(2)], model_version="mlp-small")
    stats = c.get_inference_statistics("digits", as_json=True)["model_stats"]
    for s in stats:
        if s.get("version", ""):
            int(s["version"])
    mine = c.get_inference_statistics("digits", "mlp-small").model_stats
    assert len(mine) == 1 and mine[0].version == str(MLP_SMALL)
    assert mine[0].inference_stats.success.count >= 1
    expect_error(lambda: c.get_inference_statistics("nope"), "unknown model")


def check_repository_index():
    names = {m.name: m.state for m in client().get_model_repository_index().models}
    assert names.get("digits") == "READY" and "mnist-e2e" in names


def check_load_unload_need_the_admin_token():
    c = client()
    err = expect_error(lambda: c.unload_model(SPARE_TASK), "bearer")
    assert err.status() == "StatusCode.UNAUTHENTICATED"
    expect_error(lambda: c.load_model(SPARE_TASK), "bearer")
    assert c.is_model_ready(SPARE_TASK) is True


def check_load_unload_with_the_admin_token():
    # the stock client always sends unload_dependents (false unless asked)
    c = client()
    c.unload_model(SPARE_TASK, headers=GRPC_AUTH)
    assert c.is_model_ready(SPARE_TASK) is False
    c.load_model(SPARE_TASK, headers=GRPC_AUTH)
    assert c.is_model_ready(SPARE_TASK) is True
    c.unload_model(SPARE_TASK, headers=GRPC_AUTH, unload_dependents=True)
    c.load_model(SPARE_TASK, headers=GRPC_AUTH)
    assert c.is_model_ready(SPARE_TASK) is True


def check_load_with_a_config_override_is_refused():
    c = client()
    err = expect_error(
        lambda: c.load_model(SPARE_TASK, headers=GRPC_AUTH, config=json.dumps({"max_batch_size": 4})), "config"
    )
    assert err.status() == "StatusCode.INVALID_ARGUMENT"


def check_aio_client():
    async def run():
        async with aiogrpcclient.InferenceServerClient(GRPC) as c:
            assert await c.is_server_live()
            assert await c.is_model_ready("digits")
            assert not await c.is_model_ready("nope")
            assert (await c.get_model_metadata("digits")).name == "digits"
            x = aiogrpcclient.InferInput("image", [8, 1, 28, 28], "FP32")
            x.set_data_from_numpy(IMAGES[:8])
            results = await asyncio.gather(*[c.infer("digits", [x]) for _ in range(4)])
            for r in results:
                assert accuracy(r.as_numpy("probabilities"), LABELS[:8]) >= 0.75
            assert (await c.get_inference_statistics("digits")).model_stats
            try:
                await c.infer("nope", [x])
                raise AssertionError("unknown model accepted")
            except InferenceServerException as err:
                assert "unknown model" in str(err)

    asyncio.run(run())
