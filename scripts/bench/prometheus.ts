// Reading counters out of a Prometheus text exposition (raftkv's and etcd's /metrics alike).

/** The sum of every sample of `name` (any labels); 0 when the metric is absent. */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    // Exactly this metric: followed by labels or a space, not a longer name (e.g. name_bucket).
    if (!rest.startsWith('{') && !rest.startsWith(' ')) continue;
    const value = Number(rest.slice(rest.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum += value;
  }
  return sum;
}
