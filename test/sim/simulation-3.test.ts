// Deterministic simulation of 3-node clusters under random fault schedules: safety after every
// step, liveness once the faults end, linearizability of every client operation.
import { expect, it } from 'vitest';
import { SIM_RUNS_PER_SIZE } from './budget.js';
import { failureReport, summarize } from './report.js';
import { checkSchedules } from './run-property.js';

it(`3-node clusters stay safe, live and linearizable over ${SIM_RUNS_PER_SIZE} fault schedules`, () => {
  const outcome = checkSchedules({ runs: SIM_RUNS_PER_SIZE, bounds: { nodes: [3] } });
  console.log(summarize('3 nodes', outcome));
  if (outcome.failure !== null) expect.fail(failureReport(outcome));
  expect(outcome.schedules).toBe(SIM_RUNS_PER_SIZE);
  expect(outcome.steps).toBeGreaterThanOrEqual(1000 * SIM_RUNS_PER_SIZE);
});
