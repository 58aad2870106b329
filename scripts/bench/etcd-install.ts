// Making sure an etcd binary is there (Debian's etcd-server 3.4) without a system etcd running
// beside ours: the package's postinstall would start etcd.service on 2379, so the install runs
// behind a policy-rc.d that denies service starts (unless the machine already has one), and a
// daemon that started anyway is stopped through its service, the way it was started.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { aptInstall, isRoot, pidsNamed, which } from './host.js';

const POLICY_RC = '/usr/sbin/policy-rc.d';

export interface EtcdBinary {
  readonly path: string;
  readonly version: string;
  /** etcd processes this benchmark did not start, seen before ours started: they compete for the CPU. */
  readonly foreignPids: readonly number[];
}

export function etcdVersion(path: string): string {
  const out = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
  return /etcd Version:\s*(\S+)/.exec(out)?.[1] ?? 'unknown';
}

export function ensureEtcd(allowInstall: boolean, log: (line: string) => void): EtcdBinary {
  let path = which('etcd');
  if (path === null) {
    if (!allowInstall || !isRoot()) {
      throw new Error(
        '--vs etcd needs the etcd binary: apt-get install etcd-server (as root), or run the bench as root to install it',
      );
    }
    const guard = !existsSync(POLICY_RC);
    if (guard)
      writeFileSync(
        POLICY_RC,
        '#!/bin/sh\n# Written by raftkv scripts/bench/etcd-install.ts for the duration of one install.\nexit 101\n',
        { mode: 0o755 },
      );
    try {
      const error = aptInstall('etcd-server', log);
      if (error !== null) throw new Error(error);
    } finally {
      if (guard) rmSync(POLICY_RC, { force: true });
    }
    // If the service started despite the policy (a systemd machine), stop it as its owner would.
    if (pidsNamed('etcd').length > 0) {
      log('the etcd-server package started a system etcd: stopping it (service etcd stop)');
      spawnSync('service', ['etcd', 'stop'], { encoding: 'utf8', timeout: 30_000 });
    }
    path = which('etcd');
    if (path === null) throw new Error('etcd-server was installed but etcd is not on PATH');
  }
  const foreignPids = pidsNamed('etcd');
  if (foreignPids.length > 0)
    log(
      `warning: etcd processes not started by this benchmark are running (pids ${foreignPids.join(', ')}): they share the CPU`,
    );
  return { path, version: etcdVersion(path), foreignPids };
}
