// What a person watching a chaos run sees while it runs: on a terminal, one status line rewritten
// every second (events print above it); otherwise a plain line every few seconds, for CI logs.
import type { FaultRecord } from './nemesis.js';
import type { Counts } from './recorder.js';

export type ProgressMode = 'tty' | 'lines' | 'none';

export interface ProgressSource {
  readonly elapsedMs: () => number;
  readonly durationMs: number;
  readonly counts: () => Counts;
  readonly fault: () => FaultRecord | null;
  readonly leader: () => { id: string; term: number } | null;
}

const LINE_INTERVAL_MS = 5000;

export class Progress {
  private timer: NodeJS.Timeout | null = null;
  private lastTotal = 0;
  private lastAt = 0;
  private lastLineAt = -Infinity;
  private lineShown = false;
  private rate = 0;

  constructor(
    private readonly mode: ProgressMode,
    private readonly write: (text: string) => void,
    private source: ProgressSource | null = null,
  ) {}

  /** Prints an event line (above the live line on a terminal). */
  log(line: string): void {
    if (this.mode === 'none') return;
    this.clearLine();
    this.write(`${line}\n`);
    this.render();
  }

  start(source: ProgressSource): void {
    this.source = source;
    if (this.mode === 'none') return;
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.clearLine();
    this.source = null;
  }

  private tick(): void {
    const source = this.source;
    if (source === null) return;
    const now = source.elapsedMs();
    const counts = source.counts();
    const total = counts.ok + counts.fail + counts.unknown;
    if (now > this.lastAt) this.rate = ((total - this.lastTotal) * 1000) / (now - this.lastAt);
    this.lastTotal = total;
    this.lastAt = now;
    if (this.mode === 'tty') this.render();
    else if (now - this.lastLineAt >= LINE_INTERVAL_MS) {
      this.lastLineAt = now;
      this.write(`${this.statusLine()}\n`);
    }
  }

  private render(): void {
    if (this.mode !== 'tty' || this.source === null) return;
    const columns = process.stdout.columns ?? 120;
    this.write(`\r\x1b[2K${this.statusLine().slice(0, columns - 1)}`);
    this.lineShown = true;
  }

  private clearLine(): void {
    if (this.mode === 'tty' && this.lineShown) this.write('\r\x1b[2K');
    this.lineShown = false;
  }

  statusLine(): string {
    const source = this.source;
    if (source === null) return '';
    const counts = source.counts();
    const fault = source.fault();
    const leader = source.leader();
    const elapsed = `${Math.floor(source.elapsedMs() / 1000)}s/${Math.round(source.durationMs / 1000)}s`;
    const faultText = fault === null ? 'no fault' : `fault: ${fault.label}`;
    const leaderText = leader === null ? 'no leader' : `leader ${leader.id} (term ${leader.term})`;
    return `[${elapsed}] ${Math.round(this.rate)} ops/s  ok ${counts.ok}  fail ${counts.fail}  unknown ${counts.unknown} | ${faultText} | ${leaderText}`;
  }
}
