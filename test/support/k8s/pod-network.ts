// Pod addresses for the node agents. The API server refuses loopback addresses in EndpointSlices ("may not
// be in the loopback range"), so each fake node gets a network namespace of its own, made here and
// removed after, joined to this host by a veth pair: its pods get distinct addresses on that link, the
// EndpointSlice controller publishes them, and the router connects to them like to any pod.
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const exec = promisify(execFile);
const PREFIX = "slsk";

export interface NodeNetwork {
  /** Network namespace the node's pods run in. */
  netns: string;
  /** The node's own address (its InternalIP). */
  nodeIp: string;
  /** A fresh address for a pod on this node. */
  allocate(): Promise<string>;
  release(ip: string): Promise<void>;
  /** Command prefix that runs a program inside the node's namespace. */
  exec: string[];
  remove(): Promise<void>;
}

async function ip(...args: string[]): Promise<string> {
  const { stdout } = await exec("ip", args);
  return stdout;
}

/** Namespaces left by test processes that died before removing them. */
async function removeStale(): Promise<void> {
  const out = await ip("netns", "list").catch(() => "");
  for (const line of out.split("\n")) {
    const name = line.split(" ")[0] ?? "";
    const m = new RegExp(`^${PREFIX}(\\d+)n\\d+$`).exec(name);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      await ip("netns", "del", name).catch(() => undefined);
    }
  }
}

let checked = false;

export async function createNodeNetwork(index: number): Promise<NodeNetwork> {
  if (!checked) {
    if (process.getuid?.() !== 0)
      throw new Error("the node agents need root to create network namespaces for pod addresses (ip netns add)");
    await removeStale();
    checked = true;
  }
  if (index < 0 || index > 7) throw new Error(`node index ${index} out of range 0..7`);
  const netns = `${PREFIX}${process.pid}n${index}`;
  const slot = ((process.pid % 30) * 8 + index) % 250;
  const subnet = `10.213.${slot}`;
  const host = `slh${process.pid % 100000}x${index}`;
  const peer = `sln${process.pid % 100000}x${index}`;
  await ip("netns", "add", netns);
  try {
    await ip("link", "add", host, "type", "veth", "peer", "name", peer);
    await ip("link", "set", peer, "netns", netns);
    await ip("addr", "add", `${subnet}.1/24`, "dev", host);
    await ip("link", "set", host, "up");
    await ip("-n", netns, "link", "set", "lo", "up");
    await ip("-n", netns, "addr", "add", `${subnet}.2/24`, "dev", peer);
    await ip("-n", netns, "link", "set", peer, "up");
  } catch (err) {
    await ip("netns", "del", netns).catch(() => undefined);
    await ip("link", "del", host).catch(() => undefined);
    throw err;
  }
  const used = new Set<number>();
  return {
    netns,
    nodeIp: `${subnet}.2`,
    exec: ["ip", "netns", "exec", netns],
    async allocate() {
      let n = 10;
      while (used.has(n)) n++;
      if (n > 250) throw new Error(`no pod address left on ${netns}`);
      used.add(n);
      const addr = `${subnet}.${n}`;
      await ip("-n", netns, "addr", "add", `${addr}/24`, "dev", peer);
      return addr;
    },
    async release(addr) {
      used.delete(Number(addr.split(".")[3]));
      await ip("-n", netns, "addr", "del", `${addr}/24`, "dev", peer).catch(() => undefined);
    },
    async remove() {
      await ip("netns", "del", netns).catch(() => undefined);
      await ip("link", "del", host).catch(() => undefined);
    },
  };
}
