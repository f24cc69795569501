// Who may change what the server serves (API.md, "Admin"): the repository calls load and unload
// models, so they need the bearer token when one is set, are off beyond loopback without one, and are
// refused to web pages of other sites, which can send a "simple" cross-origin POST without a preflight.
import { createHash, timingSafeEqual } from "node:crypto";
import { quoted } from "../repository/safe-path.js";
import { ApiError } from "./types.js";

export interface AdminPolicy {
  /** SLOSERVE_ADMIN_TOKEN, when set. */
  token?: string;
  /** The address the front-ends listen on. */
  host: string;
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** `how` says where the token goes in this protocol (a header, gRPC metadata). */
export function checkAdminToken(policy: AdminPolicy, authorization: string | undefined, how: string): void {
  if (policy.token) {
    if (typeof authorization !== "string" || !sameSecret(authorization, `Bearer ${policy.token}`))
      throw new ApiError(401, `repository changes need ${how} (SLOSERVE_ADMIN_TOKEN)`);
    return;
  }
  if (!isLoopback(policy.host))
    throw new ApiError(
      403,
      `repository changes are off: this server listens on ${policy.host}, beyond loopback, and has no admin token; start it with SLOSERVE_ADMIN_TOKEN=<secret> and send ${how}`,
    );
}

/** REST only: no page of another origin, and a JSON body or none. */
export function checkAdminRequest(
  origin: string | undefined,
  host: string | undefined,
  contentType: string | undefined,
) {
  if (origin !== undefined && !sameOrigin(origin, host))
    throw new ApiError(
      403,
      `repository changes are refused from a web page of another origin (${quoted(origin)}); call the admin API from a client, not a browser page`,
    );
  if (contentType !== undefined && !/^application\/json\s*(;|$)/i.test(contentType))
    throw new ApiError(
      415,
      `repository changes take an application/json body or none, not ${quoted(contentType)}; send Content-Type: application/json`,
    );
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host.toLowerCase();
  } catch {
    return false; // "null" (a sandboxed page or a file) and anything unparsable
  }
}

export function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}
