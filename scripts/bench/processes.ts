// Every process the benchmark starts (etcd members, wrk runs) is tracked here by its ChildProcess,
// and killed by PID, never by name: the machine is shared and other people's etcd or wrk must
// survive our runs. killAll() is the last resort of a failed or interrupted run; an exit hook makes
// sure nothing outlives the benchmark even when it dies on an exception.
import type { ChildProcess } from 'node:child_process';

export class Processes {
  private readonly live = new Map<ChildProcess, string>();
  private readonly onExit = (): void => this.killAllNow();

  constructor() {
    process.on('exit', this.onExit);
  }

  /** Tracks `child` until it exits; the returned function stops tracking it early. */
  track(child: ChildProcess, what: string): () => void {
    this.live.set(child, what);
    const forget = (): void => {
      this.live.delete(child);
    };
    child.once('exit', forget);
    return forget;
  }

  get count(): number {
    return this.live.size;
  }

  describe(): string[] {
    return [...this.live.entries()].map(([child, what]) => `${what} (pid ${child.pid ?? '?'})`);
  }

  /** SIGKILLs every tracked process and waits (bounded) for each to exit. */
  async killAll(timeoutMs = 10_000): Promise<void> {
    const children = [...this.live.keys()];
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(resolve, timeoutMs);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            child.kill('SIGKILL');
          }),
      ),
    );
    this.live.clear();
  }

  /** SIGKILLs every tracked process without waiting (exit hooks, a second Ctrl-C). */
  killAllNow(): void {
    for (const child of this.live.keys()) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }

  dispose(): void {
    process.off('exit', this.onExit);
  }
}
