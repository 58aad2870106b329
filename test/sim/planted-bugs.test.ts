// The simulation must be able to fail: for each deliberately broken core, random schedules must
// produce a violation within the budget. (The correct core passes the same schedules: see the
// simulation tests.)
import { describe, expect, it } from 'vitest';
import { PLANTED_BUG_MAX_RUNS } from './budget.js';
import { PLANTED_BUGS } from '../../scripts/harness/sim/planted-bugs.js';
import { describeFailure } from '../../scripts/harness/sim/run-property.js';
import { checkSchedules } from '../../scripts/harness/sim/run-property.js';

describe('the simulation catches planted bugs', () => {
  for (const [bug, planted] of Object.entries(PLANTED_BUGS)) {
    it(`a ${planted.factory === undefined ? 'driver' : 'core'} that ${bug}`, () => {
      const outcome = checkSchedules({ runs: PLANTED_BUG_MAX_RUNS, ...planted });
      const failure = outcome.failure;
      if (failure === null) {
        expect.fail(`no violation in ${outcome.schedules} schedules: the simulation cannot see this bug`);
      }
      console.log(
        `planted bug "${bug}": caught after ${outcome.schedules} schedules: ${describeFailure(failure.result).slice(0, 240)}`,
      );
      expect(failure.result.ok).toBe(false);
    });
  }
});
