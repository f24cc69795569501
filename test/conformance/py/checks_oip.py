"""A plain grpcio client generated (grpc_tools.protoc) from the Open Inference Protocol proto that
sloserve serves (src/api/proto), as a KServe user would build one: no Triton code involved."""
import os
import sys

import grpc
import numpy as np

from common import DIGITS_VERSIONS, GRPC, IMAGES, LABELS, accuracy

sys.path.insert(0, os.environ["SLOSERVE_OIP_STUBS"])
import grpc_service_pb2 as pb  # noqa: E402
import grpc_service_pb2_grpc as pb_grpc  # noqa: E402
import health_pb2  # noqa: E402
import health_pb2_grpc  # noqa: E402

CHANNEL = grpc.insecure_channel(GRPC)
STUB = pb_grpc.GRPCInferenceServiceStub(CHANNEL)


def status_of(fn):
    try:
        fn()
    except grpc.RpcError as err:
        return err.code(), err.details()
    raise AssertionError("the call succeeded but should have failed")


def check_server_live_ready_metadata():
    assert STUB.ServerLive(pb.ServerLiveRequest()).live
    assert STUB.ServerReady(pb.ServerReadyRequest()).ready
    meta = STUB.ServerMetadata(pb.ServerMetadataRequest())
    assert meta.name == "sloserve" and "binary_tensor_data" in meta.extensions


def check_grpc_health():
    stub = health_pb2_grpc.HealthStub(CHANNEL)
    assert stub.Check(health_pb2.HealthCheckRequest(service="")).status == health_pb2.HealthCheckResponse.SERVING
    code, _ = status_of(lambda: stub.Check(health_pb2.HealthCheckRequest(service="nope")))
    assert code == grpc.StatusCode.NOT_FOUND


def check_model_ready():
    assert STUB.ModelReady(pb.ModelReadyRequest(name="digits")).ready
    assert STUB.ModelReady(pb.ModelReadyRequest(name="digits", version="mlp-small")).ready
    assert not STUB.ModelReady(pb.ModelReadyRequest(name="nope")).ready


def check_model_metadata():
    m = STUB.ModelMetadata(pb.ModelMetadataRequest(name="digits"))
    assert list(m.versions) == DIGITS_VERSIONS
    assert m.inputs[0].name == "image" and list(m.inputs[0].shape) == [-1, 1, 28, 28]
    code, details = status_of(lambda: STUB.ModelMetadata(pb.ModelMetadataRequest(name="nope")))
    assert code == grpc.StatusCode.NOT_FOUND and "nope" in details


def request(n, contents: bool, version=""):
    req = pb.ModelInferRequest(model_name="digits", model_version=version, id="oip-1")
    t = req.inputs.add(name="image", datatype="FP32", shape=[n, 1, 28, 28])
    if contents:
        t.contents.fp32_contents.extend(IMAGES[:n].ravel().tolist())
    else:
        req.raw_input_contents.append(IMAGES[:n].tobytes())
    req.parameters["slo_ms"].double_param = 500
    return req


def check_model_infer_raw_and_contents():
    for contents in [False, True]:
        res = STUB.ModelInfer(request(16, contents))
        assert res.id == "oip-1" and res.model_version in DIGITS_VERSIONS
        out = res.outputs[0]
        assert out.name == "probabilities" and list(out.shape) == [16, 10] and out.datatype == "FP32"
        p = np.frombuffer(res.raw_output_contents[0], dtype=np.float32).reshape(16, 10)
        assert accuracy(p, LABELS[:16]) >= 0.8
        assert res.parameters["slo_met"].bool_param is True


def check_model_infer_errors():
    bad = request(1, False)
    bad.inputs[0].shape[:] = [1, 28, 28]
    code, details = status_of(lambda: STUB.ModelInfer(bad))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "shape" in details
    code, _ = status_of(lambda: STUB.ModelInfer(request(1, False, version="nope")))
    assert code == grpc.StatusCode.NOT_FOUND


def check_model_config_and_statistics():
    config = STUB.ModelConfig(pb.ModelConfigRequest(name="digits")).config
    assert config.name == "digits" and config.max_batch_size >= 1
    STUB.ModelInfer(request(2, False, version="mlp-small"))
    stats = STUB.ModelStatistics(pb.ModelStatisticsRequest(name="digits", version="mlp-small")).model_stats
    assert len(stats) == 1 and stats[0].inference_stats.success.count >= 1


def check_repository_index():
    models = STUB.RepositoryIndex(pb.RepositoryIndexRequest()).models
    assert any(m.name == "digits" and m.state == "READY" for m in models)
