// A grpcio client generated at test time from the proto sloserve serves (src/api/proto), as a
// KServe user would build one (py/checks_oip.py).
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { GRPC_PROTO_DIR } from "../../src/api/grpc.js";
import { clientGroup, PYTHON } from "./support.js";

clientGroup(
  "oip_grpcio",
  [
    { name: "server_live_ready_metadata" },
    { name: "grpc_health" },
    { name: "model_ready" },
    { name: "model_metadata" },
    { name: "model_infer_raw_and_contents" },
    { name: "model_infer_errors" },
    { name: "model_config_and_statistics" },
    { name: "repository_index" },
  ],
  async (s) => {
    const out = path.join(s.data, "oip-stubs");
    await fs.mkdir(out);
    const protos = ["grpc_service.proto", "health.proto"];
    await promisify(execFile)(PYTHON, [
      "-m",
      "grpc_tools.protoc",
      `-I${GRPC_PROTO_DIR}`,
      `--python_out=${out}`,
      `--grpc_python_out=${out}`,
      ...protos,
    ]);
    return { SLOSERVE_OIP_STUBS: out };
  },
);
