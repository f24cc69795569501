// CPU and memory quantities as the API writes them ("2", "1500m", "0.5", "512Mi"): the backend compares
// what it asked for with what the node allocated, so both must be read the same way.
const SUFFIX: Record<string, number> = {
  m: 1e-3,
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

export function parseQuantity(q: string | number | undefined): number {
  if (q === undefined) return 0;
  if (typeof q === "number") return q;
  const m = /^([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)([a-zA-Z]*)$/.exec(q.trim());
  const scale = m ? SUFFIX[m[2]!] : undefined;
  if (!m || scale === undefined) throw new Error(`not a Kubernetes quantity: '${q}'`);
  return Number(m[1]) * scale;
}

/** Cores as the API's canonical form: whole cores plain, fractions in millicores. */
export function formatCpu(cores: number): string {
  const milli = Math.round(cores * 1000);
  return milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`;
}

export function sameCpu(a: string | number | undefined, b: string | number | undefined): boolean {
  return Math.round(parseQuantity(a) * 1000) === Math.round(parseQuantity(b) * 1000);
}
