// Runs wrk once: writes the workload's Lua script next to the run's other files, spawns wrk with
// --latency and a hard deadline (it is killed by PID if it overstays), and reads done()'s line.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseWrkOutput, wrkScript } from './lua.js';
import type { LoadResult } from './types.js';
import type { VarTables, Workload } from './workload.js';
import type { Processes } from './processes.js';

export interface WrkRun {
  readonly workload: Workload;
  readonly tables: VarTables;
  readonly connections: number;
  /** Whole seconds: wrk's duration has no finer unit. */
  readonly durationS: number;
  readonly threads: number;
  /** A request without an answer after this long counts as a timeout. */
  readonly timeoutS: number;
  /** Where the script goes (the run's temp dir). */
  readonly dir: string;
  readonly processes: Processes;
}

let scripts = 0;

export async function runWrk(run: WrkRun): Promise<LoadResult> {
  const durationS = Math.max(1, Math.round(run.durationS));
  const script = join(run.dir, `wrk-${process.pid}-${++scripts}.lua`);
  writeFileSync(script, wrkScript(run.workload, run.tables));
  const threads = Math.max(1, Math.min(run.threads, run.connections));
  const args = [
    '-t',
    String(threads),
    '-c',
    String(run.connections),
    '-d',
    `${durationS}s`,
    '--timeout',
    `${run.timeoutS}s`,
    '--latency',
    '-s',
    script,
    run.workload.baseUrl,
  ];
  const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = run.processes.track(child, 'wrk');
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  // wrk ends on its own after the duration; the margin covers its last in-flight timeouts.
  const deadline = setTimeout(() => child.kill('SIGKILL'), (durationS + run.timeoutS + 30) * 1000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => resolve(c));
  }).finally(() => {
    clearTimeout(deadline);
    stop();
  });
  if (code !== 0) throw new Error(`wrk exited with ${code}: ${stderr.trim() || stdout.slice(-1000)}`);
  const done = parseWrkOutput(stdout);
  const seconds = done.durationUs / 1e6;
  return {
    tool: 'wrk',
    connections: run.connections,
    durationS: seconds,
    requests: done.requests,
    reqPerSec: seconds > 0 ? done.requests / seconds : 0,
    p50Ms: done.p50Us / 1000,
    p99Ms: done.p99Us / 1000,
    maxMs: done.maxUs / 1000,
    non2xx: done.status,
    socketErrors: done.connect + done.read + done.write,
    timeouts: done.timeout,
  };
}
