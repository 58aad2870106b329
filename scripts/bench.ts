// npm run bench -- [--vs etcd] [--only put,get-leader] [--connections 1,16,64] [--duration 10]
//   [--warmup 3] [--tool wrk|autocannon] [--out FILE] [--smoke]   (--help for every option)
// Benchmarks a fresh three-node raftkv cluster (and, with --vs etcd, a three-member etcd cluster,
// case by case, interleaved), prints Markdown tables and writes the JSON result. See BENCHMARKS.md.
import { basename } from 'node:path';
import { formatReport } from './bench/format.js';
import { machineBasics } from './bench/host.js';
import { parseBenchArgs, USAGE } from './bench/options.js';
import { defaultResultPath, readReport, writeReport } from './bench/report.js';
import { runBench } from './bench/runner.js';
import { BenchSession } from './bench/session.js';

const argv = process.argv.slice(2);
let options;
try {
  options = parseBenchArgs(argv, machineBasics().cpus);
} catch (error) {
  console.error(`bench: ${(error as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (options === 'help') {
  console.log(USAGE);
  process.exit(0);
}
if ('report' in options) {
  console.log(formatReport(readReport(options.report)));
  process.exit(0);
}

const session = new BenchSession();
const log = (line: string): void => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) {
      // A second signal (a second Ctrl-C, or npm passing one on): no more waiting.
      session.cleanupNow();
      process.exit(130);
    }
    interrupted = true;
    log(`${signal}: stopping every process the benchmark started`);
    void session.cleanup().finally(() => process.exit(130));
  });
}

const command = ['npm run bench', ...(argv.length > 0 ? ['--', ...argv] : [])].join(' ');
const out = options.out ?? defaultResultPath(new Date());
try {
  const report = await runBench(options, session, command, log);
  writeReport(out, report);
  console.log(formatReport(report));
  log(`result: ${out}`);
  const failed =
    report.cases.flatMap((c) => c.runs.filter((r) => r.failed !== undefined)).length +
    report.scanUnderWrite.filter((s) => s.failed !== undefined).length;
  if (failed > 0) log(`${failed} run(s) failed: see the tables and ${basename(out)}`);
  process.exitCode = failed > 0 ? 1 : 0;
} catch (error) {
  log(`failed: ${(error as Error).stack ?? String(error)}`);
  process.exitCode = 1;
} finally {
  await session.cleanup();
}
