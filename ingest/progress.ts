/** A one-line progress bar on stderr, only when stderr is a terminal; silent when piped. */
export class Progress {
  private last = 0;
  private readonly t0 = performance.now();
  private shown = false;

  constructor(
    private readonly name: string,
    private readonly total: number | null,
    private readonly enabled: boolean,
  ) {}

  update(bytes: number, lines: number): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.last < 200) return;
    this.last = now;
    const s = (now - this.t0) / 1000;
    const pct = this.total ? ` ${Math.min(100, (100 * bytes) / this.total).toFixed(0)}%` : '';
    const line = `${this.name}:${pct} ${(bytes / 1e6).toFixed(0)} MB, ${(lines / 1e6).toFixed(2)} M lines, ${(bytes / 1e6 / s).toFixed(0)} MB/s, ${(lines / 1e6 / s).toFixed(2)} M lines/s`;
    process.stderr.write('\r' + line.padEnd(100).slice(0, (process.stderr.columns ?? 100) - 1));
    this.shown = true;
  }

  done(): void {
    if (this.shown) process.stderr.write('\r' + ' '.repeat((process.stderr.columns ?? 100) - 1) + '\r');
  }
}
