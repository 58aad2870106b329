// Issue 4's proof: do big scans hurt writes? Writes run at `writeConnections` on the leader;
// phase A measures them alone, phase B while `scanConnections` concurrent linearizable scans of
// `scanLimit` keys hit the same leader. With the read pool the scans run on worker threads, so the
// Raft loop keeps its heartbeats (no election) and write p99 in B should stay within 2x of A.
import { addDeltas, deltasBetween } from './deltas.js';
import type { LoadGenerator } from './load.js';
import { emptyLoad, NO_DELTAS } from './measure.js';
import type { RaftkvSystem } from './raftkv-system.js';
import type { ScanUnderWritePhase, ScanUnderWriteResult } from './types.js';
import type { VarTables, Workload } from './workload.js';

const SCAN_TIMEOUT_S = 30;

export interface ScanUnderWriteSettings {
  readonly mode: 'pool' | 'inline';
  readonly phaseS: number;
  readonly warmupS: number;
  readonly writeConnections: number;
  readonly scanConnections: number;
  readonly scanLimit: number;
  readonly tables: VarTables;
}

export async function scanUnderWrite(
  system: RaftkvSystem,
  load: LoadGenerator,
  s: ScanUnderWriteSettings,
  log: (line: string) => void,
): Promise<ScanUnderWriteResult> {
  const shape = {
    mode: s.mode,
    writeConnections: s.writeConnections,
    scanConnections: s.scanConnections,
    scanLimit: s.scanLimit,
  };
  try {
    const leaderUrl = system.clientUrl(await system.leader());
    const writes: Workload = {
      baseUrl: leaderUrl,
      requests: [
        {
          method: 'PUT',
          path: '/kv/<key>',
          body: '<value>',
          headers: { 'Content-Type': 'application/octet-stream' },
          weight: 1,
        },
      ],
    };
    const scans: Workload = {
      baseUrl: leaderUrl,
      requests: [{ method: 'GET', path: `/kv?limit=${s.scanLimit}`, weight: 1 }],
    };
    const writeRun = { workload: writes, tables: s.tables, connections: s.writeConnections };
    // 64 scans of 10,000 keys queue behind each other for seconds: that is their throughput, not
    // an error, so their timeout is generous (a write's stays the generator's).
    const scanRun = { workload: scans, tables: s.tables, connections: s.scanConnections, timeoutS: SCAN_TIMEOUT_S };

    if (s.warmupS > 0) {
      // Both paths warm (JIT, pool workers), with a light scan load so phase A starts calm.
      await Promise.all([
        load.run({ ...writeRun, durationS: s.warmupS }),
        load.run({ ...scanRun, connections: Math.min(4, s.scanConnections), durationS: s.warmupS }),
      ]);
    }
    const a0 = await system.snapshot();
    const aWrites = await load.run({ ...writeRun, durationS: s.phaseS });
    const a1 = await system.snapshot();
    const phaseA: ScanUnderWritePhase = { writes: aWrites, scans: null, deltas: deltasBetween(a0, a1) };
    log(`  phase A (writes alone): ${aWrites.reqPerSec.toFixed(0)} writes/s, p99 ${aWrites.p99Ms.toFixed(1)} ms`);

    const b0 = await system.snapshot();
    const [bWrites, bScans] = await Promise.all([
      load.run({ ...writeRun, durationS: s.phaseS }),
      load.run({ ...scanRun, durationS: s.phaseS }),
    ]);
    const b1 = await system.snapshot();
    const phaseB: ScanUnderWritePhase = { writes: bWrites, scans: bScans, deltas: deltasBetween(b0, b1) };
    log(
      `  phase B (with ${s.scanConnections} scans of ${s.scanLimit}): ${bWrites.reqPerSec.toFixed(0)} writes/s, p99 ${bWrites.p99Ms.toFixed(1)} ms; ${bScans.reqPerSec.toFixed(1)} scans/s`,
    );

    return {
      ...shape,
      phaseA,
      phaseB,
      writeP99Ratio: aWrites.p99Ms > 0 ? bWrites.p99Ms / aWrites.p99Ms : Number.POSITIVE_INFINITY,
      leaderChanges: addDeltas(phaseA.deltas, phaseB.deltas).leaderChanges,
    };
  } catch (error) {
    const empty: ScanUnderWritePhase = {
      writes: emptyLoad(load.tool, s.writeConnections),
      scans: null,
      deltas: NO_DELTAS,
    };
    return {
      ...shape,
      phaseA: empty,
      phaseB: empty,
      writeP99Ratio: 0,
      leaderChanges: 0,
      failed: (error as Error).message,
    };
  }
}
