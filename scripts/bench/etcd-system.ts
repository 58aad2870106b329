// etcd as a BenchSystem: leader and term from the v3 gateway's maintenance/status, leader changes
// and WAL fsyncs from /metrics, and a preload through both the v2 and the v3 API (in 3.4 they are
// separate stores, and the cases read from both).
import { waitFor } from '../harness/cluster/process-cluster.js';
import { EtcdCluster } from './etcd-cluster.js';
import type { EtcdBinary } from './etcd-install.js';
import { getText, postJson, sendAll } from './http.js';
import { peakRssBytes, processCpuSeconds } from './host.js';
import { base64, type KeySpace } from './keys.js';
import type { Processes } from './processes.js';
import { metricSum } from './prometheus.js';
import type { BenchSystem } from './system.js';
import type { NodeMemory, SystemSnapshot } from './types.js';

interface MaintenanceStatus {
  header: { member_id: string };
  leader: string;
  raftTerm: string;
  raftIndex: string;
  raftAppliedIndex: string;
}

export const ETCD_V2_FORM = { 'Content-Type': 'application/x-www-form-urlencoded' } as const;
export const JSON_HEADERS = { 'Content-Type': 'application/json' } as const;

export class EtcdSystem implements BenchSystem {
  readonly name = 'etcd' as const;
  readonly version: string;

  private constructor(
    private readonly cluster: EtcdCluster,
    binary: EtcdBinary,
  ) {
    this.version = `etcd ${binary.version}`;
  }

  static async start(binary: EtcdBinary, processes: Processes): Promise<EtcdSystem> {
    const cluster = await EtcdCluster.start(binary.path, processes);
    return new EtcdSystem(cluster, binary);
  }

  get dir(): string {
    return this.cluster.dir;
  }

  get nodeIds(): string[] {
    return this.cluster.members.map((m) => m.name);
  }

  clientUrl(id: string): string {
    const member = this.cluster.members.find((m) => m.name === id);
    if (member === undefined) throw new Error(`no etcd member ${id}`);
    return member.clientUrl;
  }

  /** Each member's own id and its view of the leader (null: it did not answer). */
  private async statuses(): Promise<Array<{ name: string; status: MaintenanceStatus | null }>> {
    return Promise.all(
      this.cluster.members.map(async (m) => ({
        name: m.name,
        status: await postJson<MaintenanceStatus>(`${m.clientUrl}/v3/maintenance/status`, {}).catch(() => null),
      })),
    );
  }

  private static leaderName(statuses: Array<{ name: string; status: MaintenanceStatus | null }>): string | null {
    const views = statuses.map((s) => s.status?.leader);
    const first = views[0];
    if (first === undefined || first === '0' || !views.every((v) => v === first)) return null;
    return statuses.find((s) => s.status?.header.member_id === first)?.name ?? null;
  }

  leader(): Promise<string> {
    return waitFor(
      'an etcd leader every member agrees on',
      async () => EtcdSystem.leaderName(await this.statuses()) ?? undefined,
      15_000,
    );
  }

  async snapshot(): Promise<SystemSnapshot> {
    const statuses = await this.statuses();
    const leaderChanges: Record<string, number> = {};
    const terms: Record<string, number | null> = {};
    let fsyncs = 0;
    await Promise.all(
      this.cluster.members.map(async (m) => {
        const metrics = await getText(`${m.clientUrl}/metrics`).catch(() => '');
        leaderChanges[m.name] = metricSum(metrics, 'etcd_server_leader_changes_seen_total');
        fsyncs += metricSum(metrics, 'etcd_disk_wal_fsync_duration_seconds_count');
      }),
    );
    for (const s of statuses) terms[s.name] = s.status === null ? null : Number(s.status.raftTerm);
    const cpuSeconds = Object.fromEntries(
      this.cluster.members.map((m) => [m.name, m.process?.pid === undefined ? null : processCpuSeconds(m.process.pid)]),
    );
    return {
      leaderChanges,
      terms,
      leader: EtcdSystem.leaderName(statuses),
      fsyncs,
      writesAcknowledged: null,
      cpuSeconds,
    };
  }

  memory(): NodeMemory[] {
    return this.cluster.members.map((m) => {
      const pid = m.process?.pid ?? 0;
      const bytes = pid === 0 ? null : peakRssBytes(pid);
      return { system: 'etcd', node: m.name, pid, peakRssMB: bytes === null ? null : bytes / 1e6 };
    });
  }

  async preload(keys: KeySpace, valueOf: (i: number) => string): Promise<void> {
    const url = this.clientUrl(await this.leader());
    await sendAll(url, keys.count, (i) => ({
      method: 'PUT',
      path: `/v2/keys/${keys.key(i)}`,
      body: `value=${valueOf(i)}`,
      headers: ETCD_V2_FORM,
    }));
    await sendAll(url, keys.count, (i) => ({
      method: 'POST',
      path: '/v3/kv/put',
      body: JSON.stringify({ key: base64(keys.key(i)), value: base64(valueOf(i)) }),
      headers: JSON_HEADERS,
    }));
    // Every member must have applied the preload before stale reads are measured on it.
    const target = Math.max(...(await this.statuses()).map((s) => Number(s.status?.raftIndex ?? 0)));
    await waitFor(
      'every etcd member to apply the preload',
      async () =>
        (await this.statuses()).every((s) => Number(s.status?.raftAppliedIndex ?? 0) >= target) ? true : undefined,
      30_000,
    );
  }

  stop(): Promise<void> {
    return this.cluster.stop();
  }
}
