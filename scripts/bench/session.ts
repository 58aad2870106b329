// Everything one benchmark run holds that must not outlive it: running systems, tracked processes
// and temp dirs. cleanup() is idempotent and bounded, so the normal path, a failure and Ctrl-C
// all end the same way: every process we started is killed by PID and every temp dir removed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Processes } from './processes.js';

export class BenchSession {
  readonly processes = new Processes();
  private readonly stops = new Set<() => Promise<void>>();
  private readonly dirs: string[] = [];
  private cleaning: Promise<void> | null = null;
  private readonly onExit = (): void => this.cleanupNow();

  constructor() {
    // Whatever ends the process (an exception, a second Ctrl-C), nothing of ours survives it.
    process.on('exit', this.onExit);
  }

  /** A temp dir removed at cleanup. */
  tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  /** Registers a dir something else creates (a cluster's), removed at cleanup if still there. */
  adoptDir(dir: string): void {
    this.dirs.push(dir);
  }

  /** Every dir this session removes at cleanup. */
  get ownedDirs(): readonly string[] {
    return this.dirs;
  }

  /** Registers a stop function (a system's); returns a function that runs it now and forgets it. */
  own(stop: () => Promise<void>): () => Promise<void> {
    this.stops.add(stop);
    return async () => {
      this.stops.delete(stop);
      await stop();
    };
  }

  cleanup(): Promise<void> {
    this.cleaning ??= (async () => {
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, 30_000).unref());
      await Promise.race([Promise.allSettled([...this.stops].map((stop) => stop())), deadline]);
      this.stops.clear();
      await this.processes.killAll();
      for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
      this.processes.dispose();
      process.off('exit', this.onExit);
    })();
    return this.cleaning;
  }

  /** The synchronous last resort: SIGKILL every tracked process and remove every dir, now. */
  cleanupNow(): void {
    this.processes.killAllNow();
    for (const dir of this.dirs) {
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
      } catch {
        // a process killed just now may still hold a file open; nothing more can be done here
      }
    }
  }
}
