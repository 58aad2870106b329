// V8 heap flags every node process is started with (by `npm start`, `npm run node`, the tests, the
// chaos runner and the bench). Measured in BENCHMARKS.md (memory): with V8's defaults on a machine
// with 24 GiB the old-space limit is about 4 GiB, and V8 lets the heap grow towards it under a
// write burst (heap total 120 MB, RSS 210-260 MB per node after 10 s of 64-connection PUTs) before a
// full collection; the live heap after a collection is about 30 MB. A 1 GiB limit makes V8 collect
// sooner (RSS ~145 MB in the same run) while staying far above what the bounded queues can hold
// (64 MiB of queued writes, 1 MiB values, bounded scan pages), and a 4 MiB semi-space keeps the young
// generation small. package.json's `node` script repeats these two flags.
export const NODE_HEAP_FLAGS: readonly string[] = ['--max-old-space-size=1024', '--max-semi-space-size=4'];

/**
 * Extra flags for each node's `node` from RAFTKV_NODE_ARGS (say "--cpu-prof --cpu-prof-dir=prof" to
 * profile), as `npm start`, the bench, the catch-up run and measure-follower take them.
 */
export function nodeArgsFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env['RAFTKV_NODE_ARGS'] ?? '').split(/\s+/).filter((flag) => flag !== '');
}
