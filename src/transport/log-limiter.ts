// Rate limiting for log lines caused by remote parties. A peer (or anything else that can reach the
// port) that floods us with bad requests must not flood the log: per key (source address and
// error code, or peer id) at most one line per interval, and the next line says how many were
// suppressed in between.

export class LogLimiter {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly intervalMs: number,
    /** Bounds memory when many distinct sources misbehave: the oldest keys are forgotten first. */
    private readonly maxKeys = 1024,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Returns null when a line for `key` was logged less than an interval ago (the line is counted
   * as suppressed), else the number of lines suppressed since the last one (the caller logs it).
   */
  admit(key: string): number | null {
    const now = this.now();
    const entry = this.last.get(key);
    if (entry !== undefined && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return null;
    }
    const suppressed = entry?.suppressed ?? 0;
    // Re-insert so that Map order is least-recently-logged first.
    this.last.delete(key);
    this.last.set(key, { at: now, suppressed: 0 });
    if (this.last.size > this.maxKeys) {
      const oldest = this.last.keys().next();
      if (oldest.done !== true) this.last.delete(oldest.value);
    }
    return suppressed;
  }

  /** Forgets `key`, so its next line is logged at once (used when a failing peer recovers). */
  reset(key: string): void {
    this.last.delete(key);
  }
}
