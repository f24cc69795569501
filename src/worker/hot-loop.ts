// Busy-polling after activity: an idle core on a virtual machine takes hundreds of microseconds to
// wake for the next message. For a moment after each one the event loop keeps spinning through
// setImmediate (which polls sockets without sleeping), so a request that follows soon is picked
// up at once. It trades CPU for latency; worth it on a core the process has to itself.
export class HotLoop {
  private until = 0;
  private spinning = false;
  private stopped = false;

  constructor(private readonly ms: number) {}

  poke(): void {
    if (this.ms <= 0 || this.stopped) return;
    this.until = performance.now() + this.ms;
    if (this.spinning) return;
    this.spinning = true;
    const spin = () => {
      if (performance.now() < this.until && !this.stopped) setImmediate(spin);
      else this.spinning = false;
    };
    setImmediate(spin);
  }

  stop(): void {
    this.stopped = true;
  }
}
