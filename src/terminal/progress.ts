// A progress bar for long work when a person is watching (TTY), plain lines otherwise (CI, logs).
import cliProgress from "cli-progress";

export interface Progress {
  step(done: number, total: number, label: string): void;
  stop(): void;
}

export function progress(title: string): Progress {
  if (!process.stderr.isTTY) {
    let last = 0;
    return {
      step(done, total, label) {
        const now = Date.now();
        if (done === total || now - last > 2000) {
          last = now;
          process.stderr.write(`${title}: ${done}/${total} ${label}\n`);
        }
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: `${title} [{bar}] {value}/{total} {label}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    step(done, total, label) {
      if (!started) {
        bar.start(total, 0, { label });
        started = true;
      }
      bar.setTotal(total);
      bar.update(done, { label });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
