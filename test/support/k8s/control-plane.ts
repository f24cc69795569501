// A real Kubernetes control plane on loopback for the tests: etcd, kube-apiserver, kube-controller-manager
// and kube-scheduler, built from Go modules by scripts/k8s-control-plane.sh (cached; the first call builds
// them), each with its own certificate or token. No kubelet: node agents (node-agent.ts) stand in for it.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";

const exec = promisify(execFile);
const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../..");

/** Builds the binaries on first use (minutes; both cores) and returns their directory. */
export async function controlPlaneBinaries(): Promise<string> {
  const { stdout } = await exec("bash", [path.join(REPO, "scripts/k8s-control-plane.sh"), "build"], {
    maxBuffer: 1 << 20,
    timeout: 40 * 60_000,
  });
  return stdout.trim().split("\n").pop()!;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const children = new Set<ChildProcess>();
// A test process that dies must not leave a control plane behind.
process.once("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

export interface ControlPlane {
  dir: string;
  bin: string;
  apiUrl: string;
  /** Admin kubeconfig file (system:masters). */
  kubeconfigPath: string;
  kubeConfig(): KubeConfig;
  /** A kubeconfig for a user in the static token file (see `users`), for RBAC tests. */
  kubeconfigFor(user: string): string;
  /** Stops the API server and starts it again on the same port and etcd (the watches must resume). */
  restartApiServer(): Promise<{ downMs: number }>;
  kubectl(args: string[], opts?: { input?: string }): Promise<{ stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  /** Seconds without a heartbeat before the node controller calls a node unreachable. */
  nodeMonitorGracePeriodS?: number;
  /** Users (besides admin and the components) with their tokens, for RBAC tests: name → groups. */
  users?: Record<string, string[]>;
}

function run(name: string, bin: string, args: string[], logDir: string): ChildProcess {
  const log = fs.openSync(path.join(logDir, `${name}.log`), "a");
  const p = spawn(bin, args, { stdio: ["ignore", log, log] });
  fs.closeSync(log);
  children.add(p);
  p.once("exit", () => children.delete(p));
  return p;
}

async function stopProcess(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once("exit", r));
  p.kill("SIGTERM");
  const timer = setTimeout(() => p.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

async function waitFor(what: string, ms: number, probe: () => Promise<boolean>, logFile?: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  const tail =
    logFile && fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8").split("\n").slice(-15).join("\n") : "";
  throw new Error(`${what} did not come up within ${ms} ms${tail ? `; last log lines:\n${tail}` : ""}`);
}

function kubeconfigYaml(name: string, server: string, caFile: string, token: string): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "sloserve-test", cluster: { server, "certificate-authority": caFile } }],
    users: [{ name, user: { token } }],
    contexts: [{ name, context: { cluster: "sloserve-test", user: name } }],
    "current-context": name,
  });
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await exec("openssl", args, { cwd });
}

/** Starts etcd, the API server, the controller manager and the scheduler; resolves when all are serving. */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const bin = await controlPlaneBinaries();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sloserve-k8s-"));
  const pki = path.join(dir, "pki");
  fs.mkdirSync(pki);
  // A CA, the API server's serving certificate for 127.0.0.1, and the service-account signing key.
  await openssl(
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      "2",
      "-subj",
      "/CN=sloserve-test-ca",
    ],
    pki,
  );
  await openssl(
    [
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "apiserver.key",
      "-out",
      "apiserver.csr",
      "-subj",
      "/CN=kube-apiserver",
    ],
    pki,
  );
  fs.writeFileSync(path.join(pki, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n");
  await openssl(
    [
      "x509",
      "-req",
      "-in",
      "apiserver.csr",
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "apiserver.crt",
      "-days",
      "2",
      "-extfile",
      "san.ext",
    ],
    pki,
  );
  await openssl(["genrsa", "-out", "sa.key", "2048"], pki);
  await openssl(["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"], pki);
  const token = () => Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString("hex");
  const users: Record<string, { token: string; groups: string[] }> = {
    admin: { token: token(), groups: ["system:masters"] },
    "system:kube-controller-manager": { token: token(), groups: [] },
    "system:kube-scheduler": { token: token(), groups: [] },
  };
  for (const [name, groups] of Object.entries(opts.users ?? {})) users[name] = { token: token(), groups };
  fs.writeFileSync(
    path.join(pki, "tokens.csv"),
    Object.entries(users)
      .map(([name, u]) => `${u.token},${name},${name},"${u.groups.join(",")}"`)
      .join("\n") + "\n",
  );
  const [etcdClient, etcdPeer, apiPort, cmPort, schedPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const apiUrl = `https://127.0.0.1:${apiPort}`;
  const ca = path.join(pki, "ca.crt");
  const kubeconfigFor = (user: string) => {
    const file = path.join(dir, `${user.replace(/[^a-z0-9-]/gi, "_")}.kubeconfig`);
    if (!fs.existsSync(file)) fs.writeFileSync(file, kubeconfigYaml(user, apiUrl, ca, users[user]!.token));
    return file;
  };
  const kubeconfigPath = kubeconfigFor("admin");
  const logs = path.join(dir, "logs");
  fs.mkdirSync(logs);

  const etcd = run(
    "etcd",
    path.join(bin, "etcd"),
    [
      "--name=sloserve-test",
      `--data-dir=${path.join(dir, "etcd")}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=sloserve-test=http://127.0.0.1:${etcdPeer}`,
      // a throwaway test store: durability on disk is not what is tested, and fsync stalls a busy machine
      "--unsafe-no-fsync",
      "--log-level=warn",
    ],
    logs,
  );
  const grace = opts.nodeMonitorGracePeriodS ?? 5;
  const apiArgs = [
    `--etcd-servers=http://127.0.0.1:${etcdClient}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--secure-port=${apiPort}`,
    `--tls-cert-file=${path.join(pki, "apiserver.crt")}`,
    `--tls-private-key-file=${path.join(pki, "apiserver.key")}`,
    `--client-ca-file=${ca}`,
    `--token-auth-file=${path.join(pki, "tokens.csv")}`,
    "--authorization-mode=RBAC",
    "--service-account-issuer=https://kubernetes.default.svc",
    `--service-account-key-file=${path.join(pki, "sa.pub")}`,
    `--service-account-signing-key-file=${path.join(pki, "sa.key")}`,
    "--service-cluster-ip-range=10.96.0.0/16",
    // The `kubernetes` Service would point at 127.0.0.1, which Endpoints may not hold; nothing here needs it.
    "--endpoint-reconciler-type=none",
    "--enable-priority-and-fairness=false",
    "--profiling=false",
    `--default-not-ready-toleration-seconds=${grace}`,
    `--default-unreachable-toleration-seconds=${grace}`,
  ];
  let apiserver = run("kube-apiserver", path.join(bin, "kube-apiserver"), apiArgs, logs);
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const readyz = async () => {
    const { stdout } = await exec(
      path.join(bin, "kubectl"),
      ["--kubeconfig", kubeconfigPath, "get", "--raw", "/readyz"],
      {
        timeout: 5000,
      },
    );
    return stdout.trim() === "ok";
  };
  const apiLog = path.join(logs, "kube-apiserver.log");
  await waitFor("kube-apiserver", 90_000, readyz, apiLog);

  const cm = run(
    "kube-controller-manager",
    path.join(bin, "kube-controller-manager"),
    [
      `--kubeconfig=${kubeconfigFor("system:kube-controller-manager")}`,
      `--authentication-kubeconfig=${kubeconfigFor("system:kube-controller-manager")}`,
      `--authorization-kubeconfig=${kubeconfigFor("system:kube-controller-manager")}`,
      "--bind-address=127.0.0.1",
      `--secure-port=${cmPort}`,
      "--leader-elect=false",
      // each controller acts with its own service account's rights, as on kubeadm clusters
      "--use-service-account-credentials=true",
      `--service-account-private-key-file=${path.join(pki, "sa.key")}`,
      `--root-ca-file=${ca}`,
      "--node-monitor-period=1s",
      `--node-monitor-grace-period=${grace}s`,
      "--controllers=*,-bootstrapsigner,-tokencleaner,-csrsigning,-csrapproving,-csrcleaner,-ttl-after-finished,-cronjob,-job,-persistentvolume-binder,-attachdetach,-persistentvolume-expander,-ephemeral-volume,-pvc-protection,-pv-protection,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller",
    ],
    logs,
  );
  const sched = run(
    "kube-scheduler",
    path.join(bin, "kube-scheduler"),
    [
      `--kubeconfig=${kubeconfigFor("system:kube-scheduler")}`,
      `--authentication-kubeconfig=${kubeconfigFor("system:kube-scheduler")}`,
      `--authorization-kubeconfig=${kubeconfigFor("system:kube-scheduler")}`,
      "--bind-address=127.0.0.1",
      `--secure-port=${schedPort}`,
      "--leader-elect=false",
    ],
    logs,
  );
  // The components serve a self-signed certificate of their own on /healthz.
  const healthz = (port: number) => () =>
    new Promise<boolean>((resolve) => {
      const req = https.get(
        { host: "127.0.0.1", port, path: "/healthz", rejectUnauthorized: false, timeout: 2000 },
        (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        },
      );
      req.on("error", () => resolve(false));
    });
  await Promise.all([
    waitFor("kube-controller-manager", 60_000, healthz(cmPort), path.join(logs, "kube-controller-manager.log")),
    waitFor("kube-scheduler", 60_000, healthz(schedPort), path.join(logs, "kube-scheduler.log")),
  ]);
  // The namespace 'default' gets its service account from the controller manager; pods wait for it.
  await waitFor("the default service account", 30_000, async () => {
    const { stdout } = await exec(path.join(bin, "kubectl"), [
      "--kubeconfig",
      kubeconfigPath,
      "get",
      "sa",
      "default",
      "-o",
      "name",
    ]);
    return stdout.trim() === "serviceaccount/default";
  });

  const kubectl = (args: string[], o: { input?: string } = {}) =>
    new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      const p = execFile(
        path.join(bin, "kubectl"),
        ["--kubeconfig", kubeconfigPath, ...args],
        { maxBuffer: 16 << 20, timeout: 60_000 },
        (err, stdout, stderr) =>
          err ? reject(new Error(`kubectl ${args.join(" ")}: ${stderr || err.message}`)) : resolve({ stdout, stderr }),
      );
      if (o.input !== undefined) p.stdin!.end(o.input);
    });

  return {
    dir,
    bin,
    apiUrl,
    kubeconfigPath,
    kubeconfigFor,
    kubeConfig() {
      const c = new KubeConfig();
      c.loadFromFile(kubeconfigPath);
      return c;
    },
    async restartApiServer() {
      const t0 = performance.now();
      await stopProcess(apiserver);
      apiserver = run("kube-apiserver", path.join(bin, "kube-apiserver"), apiArgs, logs);
      await waitFor("kube-apiserver (restarted)", 90_000, readyz, apiLog);
      return { downMs: performance.now() - t0 };
    },
    kubectl,
    async stop() {
      await stopProcess(sched);
      await stopProcess(cm);
      await stopProcess(apiserver);
      await stopProcess(etcd);
      if (!process.env.SLOSERVE_KEEP_K8S_DIR) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
