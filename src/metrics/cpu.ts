// Machine-wide CPU utilization and memory, read from /proc as Triton's CPU metrics do: utilization
// is the busy share of all cores' time since the previous sample (so each scrape reports the
// interval since the last one); used memory is MemTotal - MemAvailable.
import { readFileSync } from "node:fs";
import os from "node:os";

interface Times {
  busy: number;
  total: number;
}

function readTimes(): Times {
  try {
    // cpu  user nice system idle iowait irq softirq steal ...
    const fields = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    let busy = 0;
    let total = 0;
    for (const c of os.cpus()) {
      const t = c.times;
      const all = t.user + t.nice + t.sys + t.idle + t.irq;
      total += all;
      busy += all - t.idle;
    }
    return { busy, total };
  }
}

export class CpuSampler {
  private last = readTimes();

  utilization(): number {
    const now = readTimes();
    const total = now.total - this.last.total;
    const busy = now.busy - this.last.busy;
    if (total <= 0) return 0;
    this.last = now;
    return Math.min(1, Math.max(0, busy / total));
  }

  memory(): { total: number; used: number } {
    try {
      const info = readFileSync("/proc/meminfo", "utf8");
      const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(info)?.[1] ?? NaN) * 1024;
      const total = kb("MemTotal");
      const available = kb("MemAvailable");
      if (Number.isFinite(total) && Number.isFinite(available)) return { total, used: total - available };
    } catch {
      // not Linux: fall through to what Node reports
    }
    return { total: os.totalmem(), used: os.totalmem() - os.freemem() };
  }
}
