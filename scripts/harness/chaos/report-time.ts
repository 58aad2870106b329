// Times on the report's pages, in seconds from the start of the workload.
import type { ChaosSummary } from './result.js';

/** Seconds from the start of the workload to `t` (ms since the epoch). */
export function rel(s: ChaosSummary, t: number): number {
  return (t - s.workload.from) / 1000;
}

/** The same, as text with two decimals. */
export function sec(s: ChaosSummary, t: number): string {
  return rel(s, t).toFixed(2);
}

/** A table's time column: events after the workload happened while the cluster was healed and read back. */
export function when(s: ChaosSummary, t: number): string {
  return t > s.workload.to ? `${sec(s, t)} (recovery)` : sec(s, t);
}
