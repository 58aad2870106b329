// How much simulation `npm test` runs. RAFTKV_SIM_RUNS overrides it (per cluster size), e.g. for a
// quick local loop; `npm run sim -- --runs N` runs as many as you like outside the test suite.
export const SIM_RUNS_PER_SIZE = Number(process.env['RAFTKV_SIM_RUNS'] ?? 1200);
/** Planted bugs: stop at the first schedule that catches one; give up (and fail) after this many. */
export const PLANTED_BUG_MAX_RUNS = 4000;
