// Scheduling policies by the names task.yaml and the command line use.
import { EdfPolicy } from "./edf.js";
import { FifoPolicy } from "./fifo.js";
import { InfaasPolicy } from "./infaas.js";
import { SlackFitPolicy } from "./slackfit.js";
import type { SchedulingPolicy } from "./types.js";

export function makeSchedulingPolicy(name: string): SchedulingPolicy {
  switch (name) {
    case "edf":
      return new EdfPolicy();
    case "fifo":
      return new FifoPolicy();
    case "infaas":
      return new InfaasPolicy();
    case "slackfit":
      return new SlackFitPolicy();
    default:
      throw new Error(`unknown scheduling policy '${name}': use edf, fifo, infaas or slackfit`);
  }
}
