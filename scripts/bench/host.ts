// The machine the benchmark runs on: finding binaries, installing the Debian packages it may use
// (only as root, only the named package, bounded), load average, and a process's peak RSS.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { delimiter, join } from 'node:path';

/** The absolute path of an executable on PATH, or null. */
export function which(binary: string): string | null {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * `apt-get install -y <pkg>` (after one `apt-get update` if the first try fails: fresh machines
 * often have no package lists). Returns the error text, or null on success.
 */
export function aptInstall(pkg: string, log: (line: string) => void): string | null {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', pkg], {
      env,
      encoding: 'utf8',
      timeout: 300_000,
    });
  log(`installing the Debian package ${pkg} (apt-get install -y ${pkg})`);
  let result = install();
  if (result.status !== 0) {
    log('apt-get install failed; running apt-get update once and retrying');
    spawnSync('apt-get', ['update'], { env, encoding: 'utf8', timeout: 300_000 });
    result = install();
  }
  return result.status === 0
    ? null
    : `apt-get install ${pkg} failed (${result.status ?? result.signal}): ${(result.stderr ?? '').slice(-500)}`;
}

/** Peak resident set size of a process in bytes (VmHWM), or null if it cannot be read. */
export function peakRssBytes(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
    return match?.[1] === undefined ? null : Number(match[1]) * 1024;
  } catch {
    return null;
  }
}

/** Clock ticks per second of /proc's utime and stime (USER_HZ: 100 on every Linux Node supports). */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * CPU seconds (user + system, every thread: the read pool's workers and libuv's too) that process
 * `pid` has used so far, from /proc/<pid>/stat; null when it cannot be read.
 */
export function processCpuSeconds(pid: number): number | null {
  const times = processCpuTimes(pid);
  return times === null ? null : times.user + times.system;
}

/** processCpuSeconds split into user and system seconds; null when /proc/<pid>/stat cannot be read. */
export function processCpuTimes(pid: number): { user: number; system: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
    return { user: utime / CLOCK_TICKS_PER_SECOND, system: stime / CLOCK_TICKS_PER_SECOND };
  } catch {
    return null;
  }
}

/** PIDs of running processes whose command name is `comm` (to detect, never to kill, others' daemons). */
export function pidsNamed(comm: string): number[] {
  const result = spawnSync('pgrep', ['-x', comm], { encoding: 'utf8', timeout: 5000 });
  return (result.stdout ?? '')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map(Number);
}

export function loadAverage(): number[] {
  return loadavg().map((l) => Math.round(l * 100) / 100);
}

export function machineBasics(): {
  cpus: number;
  cpuModel: string;
  totalMemMiB: number;
  node: string;
  platform: string;
} {
  const list = cpus();
  return {
    cpus: list.length,
    cpuModel: list[0]?.model ?? 'unknown',
    totalMemMiB: Math.round(totalmem() / 2 ** 20),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}
