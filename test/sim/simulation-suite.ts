// The simulation test for one cluster size; one file per size so vitest runs them in parallel.
import { expect, it } from 'vitest';
import { SIM_RUNS_PER_SIZE } from './budget.js';
import { failureReport, summarize } from '../../scripts/harness/sim/report.js';
import { checkSchedules } from '../../scripts/harness/sim/run-property.js';

export function simulationTest(nodes: 3 | 5): void {
  it(`${nodes}-node clusters stay safe, live and linearizable over ${SIM_RUNS_PER_SIZE} fault schedules`, () => {
    const outcome = checkSchedules({ runs: SIM_RUNS_PER_SIZE, bounds: { nodes: [nodes] } });
    console.log(summarize(`${nodes} nodes`, outcome));
    if (outcome.failure !== null) expect.fail(failureReport(outcome));
    expect(outcome.schedules).toBe(SIM_RUNS_PER_SIZE);
    expect(outcome.steps).toBeGreaterThanOrEqual(1000 * SIM_RUNS_PER_SIZE);
  });
}
