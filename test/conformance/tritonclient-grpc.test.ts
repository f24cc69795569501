// Triton's official gRPC client (tritonclient.grpc and tritonclient.grpc.aio, from PyPI) against a
// real sloserve: every call sloserve claims, unchanged client code (py/checks_grpc.py).
import { clientGroup } from "./support.js";

clientGroup("tritonclient_grpc", [
  { name: "health" },
  { name: "server_metadata" },
  { name: "model_metadata" },
  { name: "model_config" },
  { name: "model_ready" },
  { name: "infer" },
  { name: "infer_pipeline" },
  { name: "infer_async" },
  { name: "infer_parameters" },
  { name: "priority_and_timeout" },
  { name: "compression" },
  { name: "client_timeout" },
  { name: "errors" },
  { name: "classification" },
  { name: "statistics" },
  { name: "repository_index" },
  { name: "load_unload_need_the_admin_token" },
  { name: "load_unload_with_the_admin_token" },
  { name: "load_with_a_config_override_is_refused" },
  { name: "aio_client" },
]);
