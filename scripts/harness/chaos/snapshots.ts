// Snapshot transfers (InstallSnapshot), read from the node logs after the run, as leader changes
// are (leaders.ts). The logs, not polled metrics: a node's counters start again at zero with every
// restart and a paused node answers no poll, so a transfer just before a kill or during a pause
// would be lost or misattributed; the log file holds every incarnation's lines (a line written
// before a kill -9 is already in the pipe), each with its exact time, peer and snapshot index.
//
// The lines (src/snapshot/sender.ts, src/snapshot/receiver.ts, src/node/raft-node.ts):
//   leader:   "sending a snapshot" {to, index, term}, then "snapshot sent" {to, index, bytes, ms}
//             or "snapshot transfer failed" {to, err, bytes} (a superseded transfer logs nothing)
//   follower: "receiving a snapshot" {from, index, term}, then "snapshot received: installing it"
//             {from, index, bytes} or "snapshot received but not needed ..." {from, index},
//             and "installed a snapshot from the leader" {index, term} once it is persisted.

export type SendOutcome = 'sent' | 'failed' | 'unfinished';

/** One transfer as the leader saw it. Times are run-clock ms. */
export interface SnapshotSend {
  readonly from: string;
  readonly to: string;
  readonly index: number;
  readonly term: number;
  readonly start: number;
  /** When it ended (sent or failed); null when no end was logged (superseded, or the sender died). */
  readonly end: number | null;
  readonly outcome: SendOutcome;
  readonly bytes: number | null;
  readonly error?: string;
}

/** A snapshot a follower installed. */
export interface SnapshotInstall {
  readonly node: string;
  /** The leader it came from (from the "received" line before it; null if that line is missing). */
  readonly from: string | null;
  readonly index: number;
  readonly term: number;
  /** When its transfer began on the follower ("receiving a snapshot"), if logged. */
  readonly receiveStart: number | null;
  readonly at: number;
  readonly bytes: number | null;
}

export interface NodeSnapshotCounts {
  /** Snapshots this node installed from a leader. */
  readonly installed: number;
  /** Snapshots it received complete but did not need (stale, or its log already had them). */
  readonly notNeeded: number;
  /** Transfers it completed as a leader. */
  readonly sent: number;
  /** Transfers it started as a leader that failed. */
  readonly failed: number;
}

export interface SnapshotActivity {
  readonly sends: readonly SnapshotSend[];
  readonly installs: readonly SnapshotInstall[];
  readonly perNode: Readonly<Record<string, NodeSnapshotCounts>>;
  /** True when the lists were cut at MAX_LISTED (the counts are complete). */
  readonly truncated: boolean;
}

/** Bounds summary.json: a run that snapshots on every few entries can transfer thousands of times. */
export const MAX_LISTED = 2000;

interface LogLine {
  readonly time: number;
  readonly msg: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

/** Every node's transfers and installs; `logs` maps node id to its log text, `toRunClock` maps wall time. */
export function snapshotActivityFromLogs(
  logs: ReadonlyMap<string, string>,
  toRunClock: (epochMs: number) => number,
): SnapshotActivity {
  const sends: SnapshotSend[] = [];
  const installs: SnapshotInstall[] = [];
  const perNode: Record<string, { installed: number; notNeeded: number; sent: number; failed: number }> = {};
  for (const [node, text] of logs) {
    const counts = (perNode[node] = { installed: 0, notNeeded: 0, sent: 0, failed: 0 });
    // Per peer, the transfer this node is sending; per node, the one it is receiving and the last
    // one it received complete (which the install line that follows refers to).
    const sending = new Map<string, { to: string; index: number; term: number; start: number }>();
    let receiving: { from: string; index: number; start: number } | null = null;
    let received: { from: string; index: number; bytes: number | null; start: number | null } | null = null;
    const closeUnfinished = (to: string): void => {
      const open = sending.get(to);
      if (open === undefined) return;
      sends.push({ from: node, ...open, end: null, outcome: 'unfinished', bytes: null });
      sending.delete(to);
    };
    for (const line of snapshotLines(text)) {
      const at = toRunClock(line.time);
      const f = line.fields;
      if (line.msg === 'sending a snapshot') {
        const to = str(f['to']);
        if (to === null) continue;
        closeUnfinished(to);
        sending.set(to, { to, index: num(f['index']) ?? 0, term: num(f['term']) ?? 0, start: at });
      } else if (line.msg === 'snapshot sent' || line.msg === 'snapshot transfer failed') {
        const to = str(f['to']);
        if (to === null) continue;
        const ok = line.msg === 'snapshot sent';
        const open = sending.get(to);
        sending.delete(to);
        sends.push({
          from: node,
          to,
          index: open?.index ?? num(f['index']) ?? 0,
          term: open?.term ?? 0,
          start: open?.start ?? at,
          end: at,
          outcome: ok ? 'sent' : 'failed',
          bytes: num(f['bytes']),
          ...(ok ? {} : { error: str(f['err']) ?? 'unknown error' }),
        });
        if (ok) counts.sent++;
        else counts.failed++;
      } else if (line.msg === 'receiving a snapshot') {
        const from = str(f['from']);
        if (from !== null) receiving = { from, index: num(f['index']) ?? 0, start: at };
      } else if (line.msg === 'snapshot received: installing it') {
        const from = str(f['from']);
        const index = num(f['index']) ?? 0;
        const start =
          receiving !== null && receiving.from === from && receiving.index === index ? receiving.start : null;
        received = from === null ? null : { from, index, bytes: num(f['bytes']), start };
        receiving = null;
      } else if (line.msg.startsWith('snapshot received but not needed')) {
        counts.notNeeded++;
        receiving = null;
      } else if (line.msg === 'installed a snapshot from the leader') {
        const index = num(f['index']) ?? 0;
        const source = received !== null && received.index === index ? received : null;
        installs.push({
          node,
          from: source?.from ?? null,
          index,
          term: num(f['term']) ?? 0,
          receiveStart: source?.start ?? null,
          at,
          bytes: source?.bytes ?? null,
        });
        received = null;
        counts.installed++;
      }
    }
    for (const to of [...sending.keys()]) closeUnfinished(to);
  }
  sends.sort((a, b) => a.start - b.start);
  installs.sort((a, b) => a.at - b.at);
  const truncated = sends.length > MAX_LISTED || installs.length > MAX_LISTED;
  return { sends: sends.slice(0, MAX_LISTED), installs: installs.slice(0, MAX_LISTED), perNode, truncated };
}

/** Installs over every node. */
export function totalInstalls(activity: SnapshotActivity): number {
  return Object.values(activity.perNode).reduce((sum, c) => sum + c.installed, 0);
}

/** The pino JSON lines of a log that are about snapshots (cheap substring test before parsing). */
function* snapshotLines(text: string): Generator<LogLine> {
  for (const line of text.split('\n')) {
    if (!line.includes('snapshot')) continue;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (typeof entry['time'] !== 'number' || typeof entry['msg'] !== 'string') continue;
    yield { time: entry['time'], msg: entry['msg'], fields: entry };
  }
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}
