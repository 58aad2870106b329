// npm run chaos -- [--nodes 3|5] [--clients N] [--duration S] [--seed N] [--nemesis LIST] ...
//
// Kills, pauses and partitions real raftkv nodes while clients keep working, then checks every
// answer. Exit code 0 pass, 1 violation, 2 inconclusive; `--help` lists every option.
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { formatSummary } from './harness/chaos/format-summary.js';
import { parseChaosArgs, USAGE, UsageError } from './harness/chaos/options.js';
import { renderReport } from './harness/chaos/report-html.js';
import type { ChaosSummary } from './harness/chaos/result.js';
import { runChaos } from './harness/chaos/run-chaos.js';

// --report DIR: re-render a finished run's report.html from its summary.json (e.g. after the
// runner's report changed), print its summary, and exit with the run's exit code.
const reportAt = process.argv.indexOf('--report');
if (reportAt >= 0) {
  const dir = process.argv[reportAt + 1];
  if (dir === undefined) {
    console.error('chaos: --report needs the run directory');
    process.exit(2);
  }
  const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as ChaosSummary;
  writeFileSync(join(dir, 'report.html'), renderReport(summary));
  console.log(formatSummary(summary, resolve(dir)));
  process.exit(summary.exitCode);
}

let options;
try {
  options = parseChaosArgs(process.argv.slice(2), () => randomInt(2 ** 31));
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  console.error(`chaos: ${error.message}\n\n${USAGE}`);
  process.exit(2);
}
if (options === null) {
  console.log(USAGE);
  process.exit(0);
}
if (!existsSync(resolve(import.meta.dirname, '../dist/main.js'))) {
  console.error('chaos: dist/main.js is missing: run `npm run build` first (npm run chaos does it for you)');
  process.exit(2);
}

// Ctrl-C: stop, heal, kill the nodes (by PID), report what ran. Cleanup is bounded (restarts and
// kills have deadlines), so further Ctrl-C are ignored rather than leaving nodes behind.
const interrupt = new AbortController();
process.on('SIGINT', () => {
  if (interrupt.signal.aborted) return;
  process.stderr.write('\ninterrupted: stopping the run, killing its nodes, writing the report...\n');
  interrupt.abort();
});
process.on('SIGTERM', () => interrupt.abort());

const { summary } = await runChaos(options, {
  progress: process.stdout.isTTY === true ? 'tty' : 'lines',
  signal: interrupt.signal,
});
process.exit(summary.exitCode);
