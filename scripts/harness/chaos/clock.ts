// The run's one monotonic clock: milliseconds since the run started, with microsecond precision.
// Invoke and complete times of every operation, fault windows and leader changes all use it, so the
// checker's real-time order and the report's timeline agree. Node logs carry wall-clock times;
// `fromWall` maps them onto this clock (good to a few ms, enough for a timeline, never for checks).

export class RunClock {
  private readonly origin = performance.now();
  /** Date.now() at the origin. */
  readonly wallOrigin = Date.now();

  now(): number {
    return Math.round((performance.now() - this.origin) * 1000) / 1000;
  }

  fromWall(epochMs: number): number {
    return epochMs - this.wallOrigin;
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (schedule timing, not condition waits). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true || ms <= 0) {
      resolve();
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
