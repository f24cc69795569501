// Parameters of Triton's repository load/unload requests, shared by REST and gRPC. sloserve loads
// only what its repository holds, so a `config` or `file:` override is refused, never ignored;
// unload's `unload_dependents` (which the stock gRPC client always sends) is honoured.
import { ApiError } from "./types.js";

export function repositoryParameters(
  action: "load" | "unload",
  params: Record<string, unknown>,
): { unloadDependents: boolean } {
  let unloadDependents = false;
  for (const [key, value] of Object.entries(params)) {
    if (action === "unload" && key === "unload_dependents") {
      if (typeof value !== "boolean") throw new ApiError(400, "unload_dependents must be true or false");
      unloadDependents = value;
    } else if (key === "config" || key.startsWith("file:")) {
      throw new ApiError(
        400,
        `${action} parameter '${key}' (a config or file override) is not supported: sloserve ${action}s the task as its repository folder defines it; edit task.yaml/variant.yaml there and send no parameters`,
      );
    } else {
      throw new ApiError(
        400,
        `unknown ${action} parameter '${key}'${action === "unload" ? " (only unload_dependents is understood)" : "; send none"}`,
      );
    }
  }
  return { unloadDependents };
}
