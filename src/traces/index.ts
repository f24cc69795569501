// One import for everything trace-related: formats, loaders, generators and transformations.
export * from "./arrival-trace.js";
export * from "./azure-functions.js";
export * from "./azure-llm.js";
export * from "./convert.js";
export * from "./generators.js";
export * from "./lte-bandwidth.js";
export { Mulberry32, seededRandom } from "../stats/random.js";
export * from "./rescale.js";
export * from "./slice.js";
export * from "./stats.js";
export * from "./twitter.js";
