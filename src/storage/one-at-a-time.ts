// Runs async tasks one after another, each once every task started before it has settled: what
// NodeStorage needs for its batch writes (one Ready's write at a time) and for snapshot stagings
// (each begin clears the one staging generation, so no begin may overlap another begin or a chunk
// write).

export class OneAtATime {
  /** Settles once the last task started has settled (fulfilled or rejected). */
  private last: Promise<void> = Promise.resolve();

  /** Settles once every task started so far has settled (tasks started later are not waited for). */
  idle(): Promise<void> {
    return this.last;
  }

  /** Runs `task` after every task started before it. The queue moves on whether it fails or not. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    // Taken before the first await: a task started right after this call queues behind it.
    const before = this.last;
    let done!: () => void;
    this.last = new Promise<void>((resolve) => (done = resolve));
    try {
      await before;
      return await task();
    } finally {
      done();
    }
  }
}
