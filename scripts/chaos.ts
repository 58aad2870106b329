// npm run chaos -- [--nodes 3|5] [--clients N] [--duration S] [--seed N] [--nemesis LIST] ...
//
// Kills, pauses and partitions real raftkv nodes while clients keep working, then checks every
// answer. Exit code 0 pass, 1 violation, 2 inconclusive; `--help` lists every option.
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseChaosArgs, USAGE, UsageError } from '../test/chaos/options.js';
import { runChaos } from '../test/chaos/run-chaos.js';

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
