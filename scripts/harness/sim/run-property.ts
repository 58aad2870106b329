// The simulation as a fast-check property, shared by the test suite and `npm run sim`.
import fc from 'fast-check';
import type { Workload } from './clients.js';
import type { CoreFactory } from './node.js';
import { scheduleArbitrary, type Schedule, type ScheduleBounds } from './schedule.js';
import { runSimulation, type DriverBugs, type SimResult, type SimStats } from './simulator.js';

export interface PropertyRun {
  readonly runs: number;
  readonly seed?: number;
  readonly path?: string;
  readonly bounds?: ScheduleBounds;
  readonly factory?: CoreFactory;
  readonly driverBugs?: DriverBugs;
  readonly workload?: Workload;
  /**
   * Every schedule's maxApplyBytes, instead of the drawn one: 0 replays a seed and path printed
   * before schedules had the field (the core's default, which the simulation never reaches).
   */
  readonly maxApplyBytes?: number;
  /** Shrink a failing schedule to a smaller one (slow: each try is a whole run). */
  readonly shrink?: boolean;
}

export interface PropertyOutcome {
  readonly schedules: number;
  readonly steps: number;
  readonly millis: number;
  readonly totals: SimStats;
  /** fast-check's report, naming the seed and path to replay, when a schedule failed. */
  readonly failure: { readonly report: string; readonly schedule: Schedule; readonly result: SimResult } | null;
}

export function describeFailure(result: SimResult): string {
  if (result.ok) return 'ok';
  return `${result.kind} violation at step ${result.step}: ${result.message}`;
}

const NO_STATS: SimStats = {
  steps: 0,
  messagesSent: 0,
  messagesDelivered: 0,
  leaderElections: 0,
  crashes: 0,
  committed: 0,
  operations: 0,
  operationsOk: 0,
  operationsUnknown: 0,
  livenessSteps: 0,
  snapshotsInstalled: 0,
  membershipChanges: 0,
  casAnswered: 0,
  casSucceeded: 0,
  retries: 0,
  replays: 0,
  retriesToNewLeader: 0,
  replaysFromSnapshot: 0,
};

/**
 * Runs `runs` random schedules (or replays one from seed and path). Every failure names the seed
 * and path that replay it: `npm run sim -- --seed <seed> --path <path>`.
 */
export function checkSchedules(options: PropertyRun): PropertyOutcome {
  const totals: SimStats = { ...NO_STATS };
  let schedules = 0;
  let failed: { schedule: Schedule; result: SimResult } | null = null;
  const started = performance.now();
  const property = fc.property(scheduleArbitrary(options.bounds), (drawn) => {
    const schedule = options.maxApplyBytes === undefined ? drawn : { ...drawn, maxApplyBytes: options.maxApplyBytes };
    let result: SimResult;
    try {
      result = runSimulation(schedule, {
        ...(options.factory === undefined ? {} : { factory: options.factory }),
        ...(options.driverBugs === undefined ? {} : { driverBugs: options.driverBugs }),
        ...(options.workload === undefined ? {} : { workload: options.workload }),
      });
    } catch (error) {
      // A throw out of the simulation (a core invariant, a driver bug) is a failed schedule like any
      // other: it must name its seed and path, never end the run early as if nothing had happened.
      schedules++;
      const message = `threw ${(error as Error).stack ?? String(error)}`;
      failed = {
        schedule,
        result: { ok: false, kind: 'invariant', message, step: -1, stats: { ...NO_STATS }, history: [] },
      };
      throw error;
    }
    schedules++;
    for (const key of Object.keys(totals) as (keyof SimStats)[]) {
      totals[key] =
        key === 'livenessSteps' ? Math.max(totals[key], result.stats[key]) : totals[key] + result.stats[key];
    }
    if (!result.ok) {
      failed = { schedule, result };
      throw new Error(describeFailure(result));
    }
  });
  const details = fc.check(property, {
    numRuns: options.runs,
    ...(options.seed === undefined ? {} : { seed: options.seed }),
    ...(options.path === undefined ? {} : { path: options.path }),
    endOnFailure: options.shrink !== true,
  });
  const millis = performance.now() - started;
  const failure = failed as { schedule: Schedule; result: SimResult } | null;
  return {
    schedules,
    steps: totals.steps,
    millis,
    totals,
    failure: details.failed && failure !== null ? { report: fc.defaultReportMessage(details) ?? '', ...failure } : null,
  };
}
