// The subnets worth serving: those no other subnet beats on both accuracy and latency.

export interface TradeoffPoint {
  index: number;
  accuracy: number;
  latencyMs: number;
}

/** The Pareto front, fastest first: each kept point is strictly more accurate than every faster one. */
export function paretoFront<T extends TradeoffPoint>(points: readonly T[]): T[] {
  const byLatency = [...points].sort((a, b) => a.latencyMs - b.latencyMs || b.accuracy - a.accuracy);
  const front: T[] = [];
  let best = -Infinity;
  for (const p of byLatency) {
    if (p.accuracy > best) {
      front.push(p);
      best = p.accuracy;
    }
  }
  return front;
}
