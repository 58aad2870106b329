// The simulation test for one cluster size; one file per size so vitest runs them in parallel.
import { expect, it } from 'vitest';
import { SIM_RUNS_PER_SIZE } from './budget.js';
import { failureReport, summarize } from '../../scripts/harness/sim/report.js';
import { checkSchedules } from '../../scripts/harness/sim/run-property.js';

/**
 * From this many schedules on, the run must have exercised what conditional writes and retries
 * need (a quick local loop with fewer, RAFTKV_SIM_RUNS, may not get there). At 1,200 schedules a run
 * sees hundreds of replays and a dozen or more from records a snapshot brought.
 */
const COVERAGE_FROM_RUNS = 1200;

export function simulationTest(nodes: 3 | 5): void {
  it(`${nodes}-node clusters stay safe, live and linearizable over ${SIM_RUNS_PER_SIZE} fault schedules`, () => {
    const outcome = checkSchedules({ runs: SIM_RUNS_PER_SIZE, bounds: { nodes: [nodes] } });
    console.log(summarize(`${nodes} nodes`, outcome));
    if (outcome.failure !== null) expect.fail(failureReport(outcome));
    expect(outcome.schedules).toBe(SIM_RUNS_PER_SIZE);
    expect(outcome.steps).toBeGreaterThanOrEqual(1000 * SIM_RUNS_PER_SIZE);
    if (SIM_RUNS_PER_SIZE >= COVERAGE_FROM_RUNS) {
      const t = outcome.totals;
      // Conditional writes both succeed and fail; retries reach other leaders and are answered by
      // replay, some from a record the applying node received in a snapshot (dedup across a snapshot).
      expect(t.casSucceeded).toBeGreaterThan(0);
      expect(t.casAnswered - t.casSucceeded).toBeGreaterThan(0);
      expect(t.retriesToNewLeader).toBeGreaterThan(0);
      expect(t.replays).toBeGreaterThan(0);
      expect(t.replaysFromSnapshot).toBeGreaterThan(0);
    }
  });
}
