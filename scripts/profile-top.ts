// npx tsx scripts/profile-top.ts <file.cpuprofile> [--top 25] [--by function|file] [--skip S]
// Self time per function (or per file) of a V8 CPU profile written by `node --cpu-prof`: where the
// CPU went, biggest first. Used to record profiles in BENCHMARKS.md. --skip S leaves out the first S
// seconds (start-up, preloading), so the figures cover the load alone.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: 'string', default: '25' },
    by: { type: 'string', default: 'function' },
    skip: { type: 'string', default: '0' },
  },
});
const file = positionals[0];
if (file === undefined) {
  console.error('usage: npx tsx scripts/profile-top.ts <file.cpuprofile> [--top N] [--by function|file] [--skip S]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfMicros = new Map<string, number>();
let total = 0;
let elapsed = 0;
const skipMicros = Number(values.skip) * 1e6;
profile.samples.forEach((id, i) => {
  const node = byId.get(id);
  const dt = profile.timeDeltas[i] ?? 0;
  elapsed += dt;
  if (node === undefined || elapsed < skipMicros) return;
  total += dt;
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url.replace(/^file:\/\/.*?\/(node_modules|dist|src)\//, '$1/').replace(/^node:/, 'node:');
  const key =
    values.by === 'file'
      ? where || '(native)'
      : `${functionName || '(anonymous)'} ${where ? `${where}:${lineNumber + 1}` : ''}`.trim();
  selfMicros.set(key, (selfMicros.get(key) ?? 0) + dt);
});
const rows = [...selfMicros.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top));
console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled`);
for (const [key, us] of rows)
  console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${key}`);
