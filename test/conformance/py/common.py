"""What every check group shares: where the server is, the admin token, and real test digits."""
import json
import os
import urllib.error
import urllib.request

import numpy as np

HTTP = os.environ["SLOSERVE_HTTP"]  # host:port
GRPC = os.environ["SLOSERVE_GRPC"]  # host:port
TOKEN = os.environ["SLOSERVE_ADMIN_TOKEN"]
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DATA = os.environ["SLOSERVE_DATA"]

# held-out MNIST digits written by the test (float32 [N,1,28,28] in [0,1], and their labels)
IMAGES = np.fromfile(os.path.join(DATA, "digits.f32"), dtype=np.float32).reshape(-1, 1, 28, 28)
LABELS = np.fromfile(os.path.join(DATA, "digits.labels"), dtype=np.uint8)
RAW = np.rint(IMAGES[:, 0] * 255).astype(np.uint8)  # what the mnist-e2e pipeline takes

# sloserve's variants of `digits` in their Triton version numbers (positions in the metadata's list,
# which names the repository's variant folders in sorted order)
DIGITS_VERSIONS = sorted(
    d for d in os.listdir(os.path.join(os.environ["SLOSERVE_MODELS"], "digits"))
    if os.path.exists(os.path.join(os.environ["SLOSERVE_MODELS"], "digits", d, "variant.yaml"))
)
MLP_SMALL = DIGITS_VERSIONS.index("mlp-small") + 1  # mlp-small's Triton version number
SPARE_TASK = "digits-supernet"  # unloaded and loaded again by the repository checks


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float((probabilities.argmax(axis=1) == labels).mean())


def rest(method: str, path: str, body=None, headers=None):
    """A plain HTTP call for what the Triton client cannot send; returns (status, headers, bytes)."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{HTTP}{path}", data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, dict(res.headers), res.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def expect_error(fn, *fragments: str):
    """fn must raise, and its message must contain every fragment (case-insensitive)."""
    try:
        fn()
    except Exception as err:  # noqa: BLE001
        text = str(err).lower()
        for f in fragments:
            assert f.lower() in text, f"error {err!r} does not mention {f!r}"
        return err
    raise AssertionError("the call succeeded but should have failed")
