// The benchmark must not rot: a --smoke run (a fresh raftkv cluster, a tiny preload, every case
// kind for 1 s at 4 connections, a mini scan-under-write; no etcd, no root, wrk if installed and
// autocannon otherwise) must produce a well-formed result, and leave no process or temp dir behind.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CASE_NAMES } from '../../scripts/bench/types.js';
import { machineBasics } from '../../scripts/bench/host.js';
import { parseBenchArgs } from '../../scripts/bench/options.js';
import { writeReport, type BenchReport } from '../../scripts/bench/report.js';
import { runBench } from '../../scripts/bench/runner.js';
import { BenchSession } from '../../scripts/bench/session.js';
import { totalErrors } from '../../scripts/bench/types.js';

const session = new BenchSession();
const outDir = mkdtempSync(join(tmpdir(), 'raftkv-bench-smoke-'));
const lines: string[] = [];

afterAll(async () => {
  await session.cleanup();
  rmSync(outDir, { recursive: true, force: true });
});

describe('npm run bench -- --smoke', () => {
  it('measures every case kind with no errors, writes the JSON, and cleans up after itself', async () => {
    const options = parseBenchArgs(['--smoke'], machineBasics().cpus);
    if (options === 'help' || 'report' in options) throw new Error('--smoke parsed as something else');
    expect(options.allowInstall).toBe(false);
    let report: BenchReport;
    try {
      report = await runBench(options, session, 'npm run bench -- --smoke', (line) => lines.push(line));
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${lines.join('\n')}`, { cause: error });
    }
    const out = join(outDir, 'smoke.json');
    writeReport(out, report);
    const parsed = JSON.parse(readFileSync(out, 'utf8')) as BenchReport;

    const context = `\n${lines.join('\n')}`;
    expect(parsed.cases.map((c) => c.name).sort(), context).toEqual([...CASE_NAMES].sort());
    for (const c of parsed.cases) {
      expect(c.runs.length, `${c.name}${context}`).toBe(1);
      for (const run of c.runs) {
        expect(run.failed, `${c.name}${context}`).toBeUndefined();
        expect(run.system).toBe('raftkv');
        expect(run.load.reqPerSec, `${c.name} req/s${context}`).toBeGreaterThan(0);
        expect(run.load.p99Ms).toBeGreaterThanOrEqual(run.load.p50Ms);
        expect(totalErrors(run.load), `${c.name} errors${context}`).toBe(0);
        expect(run.deltas.leaderChanges, `${c.name} leader changes${context}`).toBe(0);
      }
    }
    expect(['wrk', 'autocannon']).toContain(parsed.tool);
    expect(parsed.machine.cpus).toBeGreaterThan(0);
    expect(parsed.machine.loadAvgBefore).toHaveLength(3);
    expect(parsed.systems.etcd).toBeNull();
    expect(parsed.batching.raftkv?.writes).toBeGreaterThan(0);
    expect(parsed.readPathRatio).toBeGreaterThan(0);
    // --smoke makes one interleaved pair for the ratio, besides the two cases.
    expect(parsed.readPath?.pairs.length).toBe(1);
    for (const pair of parsed.readPath?.pairs ?? []) {
      for (const run of [pair.linearizable, pair.log]) {
        expect(run.failed, context).toBeUndefined();
        expect(totalErrors(run.load), context).toBe(0);
      }
    }
    expect(parsed.readPathRatio).toBe(parsed.readPath?.ratio);
    expect(parsed.memory.atEnd.map((m) => m.node).sort()).toEqual(['n1', 'n2', 'n3']);
    for (const m of parsed.memory.atEnd) expect(m.peakRssMB).toBeGreaterThan(0);

    expect(parsed.scanUnderWrite).toHaveLength(1);
    const suw = parsed.scanUnderWrite[0];
    expect(suw?.failed, context).toBeUndefined();
    expect(suw?.phaseA.writes.reqPerSec).toBeGreaterThan(0);
    expect(suw?.phaseB.scans?.reqPerSec).toBeGreaterThan(0);
    expect(totalErrors(suw!.phaseB.writes) + totalErrors(suw!.phaseB.scans!), context).toBe(0);
    expect(parsed.targets.length).toBeGreaterThan(0);

    // The run stopped its cluster: no process of ours is left and its dirs are gone.
    await session.cleanup();
    expect(session.processes.count).toBe(0);
    for (const dir of session.ownedDirs) expect(existsSync(dir), dir).toBe(false);
  }, 40_000);
});
