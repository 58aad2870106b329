// Leader changes, read from the node logs after the run: every node logs "leader is <id>" with the
// term whenever the leader it knows changes, the new leader included. Each distinct (term, leader)
// is one leadership; the first one is the initial election, every later one a leader change (also
// when the same node wins again in a higher term: its followers still saw a change of term).

export interface Leadership {
  /** Run-clock time it was first logged (or observed). */
  readonly at: number;
  readonly term: number;
  readonly leader: string;
}

/** Leaderships in the pino JSON lines of node logs, by first appearance; `toRunClock` maps wall time. */
export function leadershipsFromLogs(logs: readonly string[], toRunClock: (epochMs: number) => number): Leadership[] {
  const first = new Map<string, Leadership>();
  for (const text of logs) {
    for (const line of text.split('\n')) {
      if (!line.includes('"leader is ')) continue;
      let entry: { time?: unknown; term?: unknown; leader?: unknown; msg?: unknown };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        continue;
      }
      if (typeof entry.time !== 'number' || typeof entry.term !== 'number' || typeof entry.leader !== 'string')
        continue;
      if (typeof entry.msg !== 'string' || !entry.msg.startsWith('leader is ')) continue;
      const key = `${entry.term}/${entry.leader}`;
      const at = toRunClock(entry.time);
      const known = first.get(key);
      if (known === undefined || at < known.at) first.set(key, { at, term: entry.term, leader: entry.leader });
    }
  }
  return [...first.values()].sort((a, b) => a.at - b.at || a.term - b.term);
}

/** Leader changes: every leadership after the first. */
export function leaderChanges(leaderships: readonly Leadership[]): number {
  return Math.max(0, leaderships.length - 1);
}
