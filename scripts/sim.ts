// npm run sim -- [--runs N] [--nodes 3|5] [--seed S --path P] [--trace] [--shrink] [--bug NAME] [--workload W]
//   [--max-apply-bytes N]
//
// Runs the deterministic simulation outside the test suite: as many random fault schedules as you
// like, or one replayed from the seed and path a failure printed. --trace prints the faults and
// leader changes of the failing (or replayed) schedule, step by step.
import { parseArgs } from 'node:util';
import { PLANTED_BUGS } from './harness/sim/planted-bugs.js';
import { failureReport, summarize } from './harness/sim/report.js';
import { checkSchedules, describeFailure } from './harness/sim/run-property.js';
import { runSimulation } from './harness/sim/simulator.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '200' },
    nodes: { type: 'string' },
    seed: { type: 'string' },
    path: { type: 'string' },
    trace: { type: 'boolean', default: false },
    shrink: { type: 'boolean', default: false },
    bug: { type: 'string' },
    workload: { type: 'string', default: 'versioned' },
    'max-apply-bytes': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  console.log(`usage: npm run sim -- [--runs N] [--nodes 3|5] [--seed S --path P] [--trace] [--shrink] [--bug NAME] [--workload W]
  --runs N     random schedules to run (default 200)
  --nodes 3|5  only clusters of that size (default both)
  --seed S     fast-check seed (printed by every failure); with --path P, replays that schedule
  --trace      print the faults and leader changes of the failing or replayed schedule
  --shrink     shrink a failing schedule to a smaller one that still fails (slow)
  --bug NAME   run a deliberately broken core or driver; names: ${Object.keys(PLANTED_BUGS)
    .map((b) => JSON.stringify(b))
    .join(', ')}
  --workload W versioned (default: conditional writes, transactions, retries) or plain (puts, deletes
               and gets only, as before conditional writes: replays schedules recorded then)
  --max-apply-bytes N  every schedule's bound on the committed entries of one Ready, instead of the
               drawn one; 0 (the core's default) replays a seed and path printed before 2026-12-07`);
  process.exit(0);
}
const workload = values.workload;
if (workload !== 'versioned' && workload !== 'plain') {
  console.error('--workload must be versioned or plain');
  process.exit(2);
}

const planted = values.bug === undefined ? undefined : PLANTED_BUGS[values.bug];
if (values.bug !== undefined && planted === undefined) {
  console.error(`unknown --bug ${JSON.stringify(values.bug)}; see --help for the names`);
  process.exit(2);
}
const nodes = values.nodes === undefined ? undefined : [Number(values.nodes) as 3 | 5];
if (nodes !== undefined && nodes[0] !== 3 && nodes[0] !== 5) {
  console.error('--nodes must be 3 or 5');
  process.exit(2);
}
const replaying = values.seed !== undefined && values.path !== undefined;
const maxApplyBytes = values['max-apply-bytes'] === undefined ? undefined : Number(values['max-apply-bytes']);
if (maxApplyBytes !== undefined && !(Number.isSafeInteger(maxApplyBytes) && maxApplyBytes >= 0)) {
  console.error('--max-apply-bytes must be a whole number of bytes (0: the core default)');
  process.exit(2);
}

const outcome = checkSchedules({
  runs: replaying ? 1 : Number(values.runs),
  ...(values.seed === undefined ? {} : { seed: Number(values.seed) }),
  ...(values.path === undefined ? {} : { path: values.path }),
  ...(nodes === undefined ? {} : { bounds: { nodes } }),
  ...planted,
  workload,
  ...(maxApplyBytes === undefined ? {} : { maxApplyBytes }),
  shrink: values.shrink,
});

console.log(summarize(replaying ? 'replay' : 'simulation', outcome));
if (outcome.failure === null) {
  console.log('no violation');
  process.exit(0);
}
console.log(`\n${failureReport(outcome)}`);
if (values.trace) {
  const { schedule } = outcome.failure;
  console.log(`\nschedule: ${JSON.stringify({ ...schedule, events: `${schedule.events.length} events` })}\ntrace:`);
  const result = runSimulation(schedule, { ...planted, workload, trace: (line) => console.log(`  ${line}`) });
  console.log(`\n${describeFailure(result)}`);
}
process.exit(1);
