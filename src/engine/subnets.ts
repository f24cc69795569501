// A supernet variant's subnets as a worker runs them: each subnet's control values, and the subnet a
// batch that names none runs. Its parent reads them from the repository and hands them over at spawn.
export interface SubnetTable {
  defaultName: string;
  /** Control input name → values, by subnet name. */
  controls: Record<string, Record<string, number[]>>;
}
