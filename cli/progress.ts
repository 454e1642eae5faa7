/*
 * progress.ts: a one-line progress bar on stderr for long replays: entries done of
 * the total, percentage, entries per second. Redrawn at most every 100 ms (the
 * caller asks often; drawing is throttled here), erased at the end.
 */
import type { Io } from './io.js';

export class Progress {
  private last = -Infinity;
  private readonly start: number;
  private drawn = false;

  constructor(private readonly io: Io, private readonly label: string, private readonly total: number, private readonly width = 24) {
    this.start = io.now();
  }

  /** Called every few hundred entries; draws when 100 ms passed since the last draw. */
  update(done: number): void {
    const t = this.io.now();
    if (t - this.last < 100) return;
    this.last = t;
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 0;
    const full = Math.round(frac * this.width);
    const secs = (t - this.start) / 1000;
    const rate = secs > 0 ? Math.round(done / secs) : 0;
    const bar = '#'.repeat(full) + '-'.repeat(this.width - full);
    const pct = `${(frac * 100).toFixed(0).padStart(3)}%`;
    this.io.stderr.write(`\r\x1b[K${this.label} [${bar}] ${pct} ${fmt(done)}/${fmt(this.total)} entries ${fmt(rate)}/s`);
    this.io.stderr.flush();
    this.drawn = true;
  }

  /** Erases the bar. */
  end(): void {
    if (!this.drawn) return;
    this.io.stderr.write('\r\x1b[K');
    this.io.stderr.flush();
    this.drawn = false;
  }
}

export function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
