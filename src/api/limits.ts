// Per-request bounds the front-ends check while decoding, before any work proportional to a hostile
// input is done: a request past one is refused with a message that names the bound.
import { quoted } from "../repository/safe-path.js";
import { ApiError } from "./types.js";

export const REQUEST_LIMITS = {
  /** Inputs per request (a task takes a handful; Triton has no bound, so a list of 10⁴ costs it dearly). */
  inputs: 64,
  /** Entries of the `outputs` list; each name may appear once. */
  outputs: 64,
  /** Depth of nested JSON `data` (a tensor of rank 32 is far beyond any model's). */
  nesting: 32,
  /** Characters of a request's `id`, echoed back in the answer. */
  idChars: 1024,
} as const;

/** Refuses a list longer than its bound before anyone iterates over it. */
export function checkCount(what: "inputs" | "outputs", n: number): void {
  const max = REQUEST_LIMITS[what];
  if (n > max) throw new ApiError(400, `'${what}' has ${n} entries; at most ${max} are accepted (each name once)`);
}

/** Refuses an output asked for twice (the answer would carry it twice, doubling the work and the reply). */
export function checkDistinctOutputs(names: readonly string[]): void {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw new ApiError(400, `output ${quoted(n)} is asked for twice; name each output once`);
    seen.add(n);
  }
}

export function checkId(id: string): void {
  if (id.length > REQUEST_LIMITS.idChars)
    throw new ApiError(400, `'id' has ${id.length} characters; at most ${REQUEST_LIMITS.idChars} are accepted`);
}
