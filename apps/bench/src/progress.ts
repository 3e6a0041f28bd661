/**
 * Progress on stderr: a redrawn bar on a TTY, plain lines otherwise (CI
 * logs, pipes). Never writes to stdout, so `--json -` style output stays clean.
 */
/** Where progress goes: process.stderr, or a stand-in in tests. */
export interface ProgressSink {
  isTTY?: boolean;
  columns?: number;
  write(s: string): unknown;
}

/**
 * A progress bar over `total` steps.
 * @example
 * ```ts
 * const p = new Progress(10); p.tick('qwen3 T=1'); p.done();
 * ```
 */
export class Progress {
  private n = 0;
  private readonly t0 = Date.now();
  private lastLen = 0;
  constructor(
    readonly total: number,
    private readonly out: ProgressSink = process.stderr,
    private readonly tty: boolean = !!process.stderr.isTTY,
  ) {}

  /** Shows that step `label` starts (does not advance). */
  start(label: string): void {
    this.draw(label);
  }

  /** Marks one step done. */
  tick(label: string): void {
    this.n = Math.min(this.total, this.n + 1);
    this.draw(label);
  }

  /** A message line that does not disturb the bar. */
  log(msg: string): void {
    if (this.tty) this.clear();
    this.out.write(msg + '\n');
  }

  /** Ends the bar (newline on a TTY). */
  done(): void {
    if (this.tty && this.lastLen) this.out.write('\n');
    this.lastLen = 0;
  }

  private clear(): void {
    if (this.lastLen) this.out.write('\r' + ' '.repeat(this.lastLen) + '\r');
    this.lastLen = 0;
  }

  private draw(label: string): void {
    const secs = ((Date.now() - this.t0) / 1000).toFixed(0);
    const head = `[${this.n}/${this.total}] ${secs}s ${label}`;
    if (!this.tty) {
      this.out.write(head + '\n');
      return;
    }
    const width = 24;
    const fill = this.total ? Math.round((width * this.n) / this.total) : width;
    let line = `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${this.n}/${this.total} ${secs}s ${label}`;
    const cols = (this.out.columns ?? 100) - 1;
    if (line.length > cols) line = line.slice(0, cols);
    this.out.write('\r' + line + ' '.repeat(Math.max(0, this.lastLen - line.length)));
    this.lastLen = line.length;
  }
}
