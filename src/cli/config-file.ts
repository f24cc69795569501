// `sloserve serve --config sloserve.yaml`: every serve flag can live in one validated YAML file, under the
// flag's own name (`grpc-port: 9001`, `deploy: [digits=cnn-small:1]`). A flag given on the command line
// wins over the file; the file wins over the defaults.
import { readFileSync } from "node:fs";
import YAML from "yaml";
import { z } from "zod";

const port = z.number().int().min(0).max(65535);
const positive = z.number().int().positive();

export const ServeFile = z
  .object({
    models: z.string(),
    host: z.string(),
    port,
    "grpc-port": port,
    "metrics-port": port,
    cores: positive,
    /** task=variant[:cores] strings, as --deploy takes them */
    deploy: z.array(
      z
        .string()
        .regex(
          /^[a-z0-9][a-z0-9._-]*=[a-z0-9][a-z0-9._-]*(:\d+)?$/,
          "each entry is task=variant[:cores], e.g. digits=cnn-small:1",
        ),
    ),
    "max-body-mb": positive,
    "drain-ms": positive,
    "hot-ms": z.number().nonnegative(),
    admission: z.enum(["predictive", "queue"]),
    "body-timeout-ms": positive,
    "max-connections": positive,
    "grpc-max-streams": positive,
    autoscaler: z.string(),
    forecaster: z.enum(["max-trend", "lstm"]),
    "decision-interval-ms": positive,
    "log-level": z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
    "warm-pool": z.number().int().nonnegative(),
    "warm-pool-min": z.number().int().nonnegative(),
    "scale-to-zero-after": z.number().positive(),
    cluster: z.enum(["local", "kubernetes"]),
    kubeconfig: z.string(),
    namespace: z.string(),
    "pod-memory": z.string(),
    "online-latency": z.union([z.boolean(), z.enum(["on", "off"]).transform((v) => v === "on")]),
    "core-sharing": z.enum(["fair", "arrival"]),
  })
  .partial()
  .strict();
export type ServeFile = z.infer<typeof ServeFile>;

/** Reads and validates a serve config; every problem is listed with its key and what to fix. */
export function loadServeFile(file: string): ServeFile {
  let raw: unknown;
  try {
    raw = YAML.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`config ${file}: ${(e as Error).message}`);
  }
  const r = ServeFile.safeParse(raw ?? {});
  if (!r.success) {
    const problems = r.error.issues.map((i) =>
      i.code === "unrecognized_keys"
        ? `unknown key(s) ${i.keys.join(", ")}; known: ${Object.keys(ServeFile.shape).join(", ")}`
        : `${i.path.join(".") || "(top)"}: ${i.message}`,
    );
    throw new Error(`config ${file}:\n  ${problems.join("\n  ")}`);
  }
  return r.data;
}

/** camelCase option name of a kebab-case flag, as commander stores it. */
export function optionKey(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * Options after the file: a value the user typed on the command line stays; otherwise the file's value
 * replaces the default. `fromCli(key)` says whether commander got the option from the command line.
 */
export function mergeServeFile<T extends object>(
  opts: T,
  file: ServeFile,
  fromCli: (key: string) => boolean,
  parseDeploy: (v: string) => unknown,
): T {
  const out = { ...opts } as Record<string, unknown>;
  for (const [flag, value] of Object.entries(file)) {
    const key = optionKey(flag);
    if (fromCli(key)) continue;
    out[key] = flag === "deploy" ? parseDeploy((value as string[]).join(",")) : value;
  }
  return out as T;
}
