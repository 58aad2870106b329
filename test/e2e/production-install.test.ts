// A node runs from a production install: `npm ci --omit=dev` plus the built dist/, no devDependency.
// Regression: src/log.ts imported pino-pretty (a devDependency) at the top, and in such an install
// every node, even `node dist/main.js --help`, died with ERR_MODULE_NOT_FOUND before parsing its
// flags; `npm start` ran `tsc` (a devDependency too) before starting anything.
//
// The install is made once, from the npm cache (--prefer-offline: CI's own `npm ci` filled it), in a
// temp dir that holds only package.json, package-lock.json and dist/, as a deployment would.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessCluster, REPO_ROOT, waitFor } from '../../scripts/harness/cluster/process-cluster.js';

interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The last 64 KiB of stdout and stderr together, for failure messages. */
  readonly output: string;
}

const OUTPUT_LIMIT = 64 * 1024;

/**
 * The environment of a machine that has only the production install: without what `npm test`
 * exports to its children (npm reads any npm_config_* variable as configuration, and
 * npm_config_local_prefix, this checkout, would point an `npm ci` in the temp dir back at the
 * checkout) and without the checkout's node_modules/.bin on PATH. The npm cache and the user's
 * own npm config files stay.
 */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const keep = new Set([
    'npm_config_cache',
    'npm_config_userconfig',
    'npm_config_globalconfig',
    'npm_config_registry',
    'npm_config_cafile',
  ]);
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('npm_') || keep.has(key)) env[key] = value;
  }
  // npm and npx put node_modules/.bin of this checkout on PATH: its tsc would be found there.
  const path = (process.env['PATH'] ?? '')
    .split(delimiter)
    .filter((dir) => !dir.endsWith(join('node_modules', '.bin')));
  return { ...env, PATH: path.join(delimiter), ...extra };
}

/** The process group of a detached child: ours, and everything it started. Gone already is fine. */
function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/**
 * Starts a command in a process group of its own (detached): the group holds exactly what it
 * started (npm's install scripts, `npm start`'s node processes), so a wait that runs out can kill
 * all of it and nothing else.
 */
function startCommand(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = cleanEnv()) {
  const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const finished = new Promise<Finished>((resolveFinished, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      // 'exit' may come before the last output: wait for the pipes, bounded (a grandchild may hold them).
      const closed = Promise.all(
        [child.stdout, child.stderr].map((s) => new Promise((r) => (s.closed ? r(null) : s.once('close', r)))),
      );
      const bound = new Promise((r) => setTimeout(r, 1000).unref());
      void Promise.race([closed, bound]).then(() => resolveFinished({ code, signal, output }));
    });
  });
  /** Waits for the end, at most `timeoutMs`; past it, kills the group and fails. */
  async function within(timeoutMs: number, what: string): Promise<Finished> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    const result = await Promise.race([finished, timedOut]);
    clearTimeout(timer);
    if (result === 'timeout') {
      killGroup(child.pid, 'SIGKILL');
      throw new Error(`${what} did not finish within ${timeoutMs} ms; output:\n${output}`);
    }
    return result;
  }
  return { child, within, output: () => output };
}

describe('a production install (npm ci --omit=dev, plus dist/)', () => {
  let installDir = '';

  beforeAll(async () => {
    installDir = mkdtempSync(join(tmpdir(), 'raftkv-prod-'));
    for (const file of ['package.json', 'package-lock.json']) cpSync(join(REPO_ROOT, file), join(installDir, file));
    cpSync(join(REPO_ROOT, 'dist'), join(installDir, 'dist'), { recursive: true });
    const install = startCommand(
      'npm',
      ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline'],
      installDir,
    );
    const result = await install.within(150_000, 'npm ci --omit=dev');
    expect(result.code, `npm ci --omit=dev failed:\n${result.output}`).toBe(0);
  }, 180_000);

  afterAll(() => {
    if (installDir !== '') rmSync(installDir, { recursive: true, force: true });
  });

  it('holds no devDependency (else this file proves nothing)', () => {
    const pkg = JSON.parse(readFileSync(join(installDir, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    const devDependencies = Object.keys(pkg.devDependencies);
    expect(devDependencies).toContain('pino-pretty');
    expect(devDependencies.filter((name) => existsSync(join(installDir, 'node_modules', name)))).toEqual([]);
    expect(existsSync(join(installDir, 'node_modules', 'pino'))).toBe(true);
  });

  it('node dist/main.js --help exits 0 with the usage', async () => {
    const result = await startCommand(process.execPath, ['dist/main.js', '--help'], installDir).within(
      30_000,
      '--help',
    );
    expect(result.output).toContain('usage: node dist/main.js --id <node id>');
    expect(result.code, result.output).toBe(0);
  });

  it('an unknown option gets the usage and exit code 2, not a stack trace (the node and npm start)', async () => {
    for (const [script, usage] of [
      ['dist/main.js', 'usage: node dist/main.js --id <node id>'],
      ['dist/cli/cluster.js', 'usage: npm start'],
    ] as const) {
      const result = await startCommand(process.execPath, [script, '--bogus'], installDir).within(30_000, script);
      expect(result.output).toContain("raftkv: Unknown option '--bogus'");
      expect(result.output).toContain(usage);
      expect(result.output).not.toContain('    at ');
      expect(result.code, result.output).toBe(2);
    }
  });

  it('logs JSON lines when pretty output is asked for but pino-pretty is not installed', async () => {
    const script =
      "const { createLogger } = await import('./dist/log.js'); createLogger({ pretty: true }).info('hello from a production install');";
    const result = await startCommand(process.execPath, ['--input-type=module', '--eval', script], installDir).within(
      30_000,
      'createLogger',
    );
    expect(result.code, result.output).toBe(0);
    expect(JSON.parse(result.output.trim())).toMatchObject({ level: 30, msg: 'hello from a production install' });
  });

  it('runs a one-node cluster: it elects itself, serves a PUT and a GET, and exits 0 on SIGTERM', async () => {
    const cluster = await ProcessCluster.create({ nodes: 1, mainJs: join(installDir, 'dist/main.js') });
    try {
      const node = cluster.start('n1');
      const outcome = await waitFor(
        'n1 to lead or exit',
        async () =>
          node.exit !== null ? 'exited' : (await cluster.status('n1'))?.role === 'leader' ? 'leader' : undefined,
        20_000,
      );
      expect(outcome, `n1's log:\n${readFileSync(node.logFile, 'utf8').slice(-OUTPUT_LIMIT)}`).toBe('leader');
      const put = await cluster.put('n1', 'greeting', 'hello');
      expect(put.status).toBe(200);
      const get = await cluster.get('n1', 'greeting');
      expect(get.status).toBe(200);
      expect(await get.text()).toBe('hello');
      await cluster.kill('n1', 'SIGTERM');
      expect(node.exit).toEqual({ code: 0, signal: null });
    } finally {
      await cluster.destroy();
    }
  });

  it('npm start runs the cluster of a config, and stops it, exit code 0, when npm gets SIGTERM', async () => {
    const cluster = await ProcessCluster.create({ nodes: 1 });
    const started = startCommand(
      'npm',
      ['start', '--', '--config', cluster.configPath],
      installDir,
      cleanEnv({ RAFTKV_PEER_TOKEN: cluster.token }),
    );
    try {
      const running = (): boolean => started.child.exitCode === null && started.child.signalCode === null;
      const outcome = await waitFor(
        'the node of npm start to lead, or npm to exit',
        async () => (!running() ? 'exited' : (await cluster.status('n1'))?.role === 'leader' ? 'leader' : undefined),
        30_000,
        100,
      );
      expect(outcome, `npm start's output:\n${started.output()}`).toBe('leader');
      const put = await cluster.put('n1', 'started', 'by npm start');
      expect(put.status).toBe(200);
      expect(await (await cluster.get('n1', 'started')).text()).toBe('by npm start');
      // A supervisor signals npm alone: npm passes it on to the cluster runner, which stops its nodes.
      started.child.kill('SIGTERM');
      const result = await started.within(30_000, 'npm start after SIGTERM');
      expect(result.code, result.output).toBe(0);
      expect(result.output).toContain('"msg":"stopped"');
      expect(await cluster.status('n1')).toBeNull();
    } finally {
      killGroup(started.child.pid, 'SIGKILL');
      await cluster.destroy();
    }
  });
});
