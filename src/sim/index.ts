// The discrete-event simulator: virtual time, a simulated cluster, and a runner that drives the
// product's own router, policies and autoscaler on them.
export { VirtualClock, type FlushMode, type VirtualClockOptions } from "./virtual-clock.js";
export { SimCluster, type Placement, type SimClusterOptions, type SimRuntime } from "./sim-cluster.js";
export { Xoshiro128, Z99 } from "../stats/random.js";
export { FrontEndCore, type FrontEndModel } from "./front-end.js";
export {
  ConstantServiceModel,
  ExponentialServiceModel,
  FitServiceModel,
  ProfileServiceModel,
  ResampledServiceModel,
  medianDuration,
  sampleDuration,
  type Duration,
  type FitServiceOptions,
  type ServiceModel,
} from "./service-model.js";
export { LatencyHistogram } from "./histogram.js";
export { RECORD_STATUS, type RecordStatus, type SimRecords, type SimSeries } from "./recorder.js";
export {
  simPipelineFromRepository,
  simSubnetsFromRepository,
  simTaskFromRepository,
  simVariantFromRepository,
  type SimArrivals,
  type SimSubnet,
  type SimDeployment,
  type SimPipeline,
  type SimTask,
  type SimVariant,
} from "./scenario.js";
export {
  simulate,
  type SimSlowdown,
  type SimSummary,
  type SimulationConfig,
  type SimulationResult,
  type TargetSummary,
} from "./simulate.js";
