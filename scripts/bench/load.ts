// One load generator for every system in a run: wrk when it is there (or can be installed: root,
// and installing allowed), autocannon otherwise. The choice is made once, so raftkv and etcd are
// always measured by the same tool in the same run.
import { runAutocannon } from './autocannon.js';
import { aptInstall, isRoot, which } from './host.js';
import type { Processes } from './processes.js';
import type { LoadResult, ToolName } from './types.js';
import type { VarTables, Workload } from './workload.js';
import { runWrk } from './wrk.js';

export function chooseTool(preference: ToolName | null, allowInstall: boolean, log: (line: string) => void): ToolName {
  if (preference === 'autocannon') return 'autocannon';
  if (which('wrk') !== null) return 'wrk';
  if (allowInstall && isRoot()) {
    const error = aptInstall('wrk', log);
    if (error === null && which('wrk') !== null) return 'wrk';
    log(`could not install wrk: ${error ?? 'not on PATH after install'}`);
  }
  if (preference === 'wrk')
    throw new Error(
      '--tool wrk: wrk is not installed and could not be installed (run as root, or apt-get install wrk)',
    );
  log('wrk is not available: falling back to autocannon (heavier: it shares the cores with the servers)');
  return 'autocannon';
}

export interface LoadRun {
  readonly workload: Workload;
  readonly tables: VarTables;
  readonly connections: number;
  readonly durationS: number;
  /** Overrides the generator's request timeout (big scans legitimately take seconds). */
  readonly timeoutS?: number;
}

export class LoadGenerator {
  constructor(
    readonly tool: ToolName,
    private readonly options: {
      readonly threads: number;
      readonly timeoutS: number;
      readonly dir: string;
      readonly processes: Processes;
    },
  ) {}

  run(run: LoadRun): Promise<LoadResult> {
    const timeoutS = run.timeoutS ?? this.options.timeoutS;
    if (this.tool === 'wrk') {
      return runWrk({
        ...run,
        threads: this.options.threads,
        timeoutS,
        dir: this.options.dir,
        processes: this.options.processes,
      });
    }
    return runAutocannon({ ...run, timeoutS });
  }
}
