import type { PropertyOutcome } from './run-property.js';
import { describeFailure } from './run-property.js';

/** One line of figures for a batch of simulated schedules. */
export function summarize(label: string, outcome: PropertyOutcome): string {
  const t = outcome.totals;
  const perSecond = Math.round(outcome.steps / (outcome.millis / 1000));
  return (
    `${label}: ${outcome.schedules} schedules, ${outcome.steps} steps in ${(outcome.millis / 1000).toFixed(1)} s ` +
    `(${perSecond} steps/s); ${t.leaderElections} elections, ${t.crashes} crashes, ` +
    `${t.messagesDelivered}/${t.messagesSent} messages delivered, ${t.operations} client ops ` +
    `(${t.operationsOk} ok, ${t.operationsUnknown} unknown; ${t.casAnswered} cas answered, ${t.casSucceeded} succeeded; ` +
    `${t.retries} retries, ${t.retriesToNewLeader} to another leader, ${t.replays} answered by replay, ` +
    `${t.replaysFromSnapshot} replays from a record a snapshot brought); ` +
    `${t.snapshotsInstalled} snapshots installed, ${t.membershipChanges} membership changes; slowest recovery ${t.livenessSteps} steps`
  );
}

/** The text a failing test prints: what broke, and how to replay it. */
export function failureReport(outcome: PropertyOutcome): string {
  if (outcome.failure === null) return '';
  return `${describeFailure(outcome.failure.result)}\n\n${outcome.failure.report}\n\nReplay it with: npm run sim -- --seed <seed> --path <path> --trace (the seed and path are in the report above)`;
}
