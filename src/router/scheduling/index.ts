// The scheduling policies by the names task.yaml and the command line use: the one list the repository
// schema, the CLI and the serving core read.
import { EdfPolicy } from "./edf.js";
import { FifoPolicy } from "./fifo.js";
import { InfaasPolicy } from "./infaas.js";
import { SlackFitPolicy } from "./slackfit.js";
import type { SchedulingPolicy } from "./types.js";

const FACTORIES = {
  edf: () => new EdfPolicy(),
  fifo: () => new FifoPolicy(),
  infaas: () => new InfaasPolicy(),
  slackfit: () => new SlackFitPolicy(),
} satisfies Record<string, () => SchedulingPolicy>;

export type SchedulingPolicyName = keyof typeof FACTORIES;

export const SCHEDULING_POLICY_NAMES = Object.keys(FACTORIES) as [SchedulingPolicyName, ...SchedulingPolicyName[]];

export function makeSchedulingPolicy(name: string): SchedulingPolicy {
  const make = (FACTORIES as Record<string, (() => SchedulingPolicy) | undefined>)[name];
  if (!make) throw new Error(`unknown scheduling policy '${name}': use ${SCHEDULING_POLICY_NAMES.join(", ")}`);
  return make();
}
