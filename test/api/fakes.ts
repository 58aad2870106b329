// A fake node and state machine for testing the client API without a cluster.
import { registerAdminRoutes, type AdminNode } from '../../src/api/admin.js';
import type { PeerToken } from '../../src/api/admin-auth.js';
import { buildClientApi, type ApiKv, type ApiNode, type ClientApi } from '../../src/api/client-api.js';
import { registerJoinInfoRoute } from '../../src/api/join-info.js';
import { DEFAULT_LIMITS, DEFAULT_TIMING, type Limits } from '../../src/config/cluster-config.js';
import { createLogger } from '../../src/log.js';
import type { WriteResult } from '../../src/node/apply-waiters.js';
import { MembershipChangeError, NotLeaderError } from '../../src/node/errors.js';
import type { NodeMetrics } from '../../src/node/metrics.js';
import type { ProgressStatus, RaftStatus } from '../../src/raft/core.js';
import type { SoftState, TransferResult } from '../../src/raft/types.js';
import {
  changedMembership,
  invalidMemberChange,
  type MemberChange,
  type Membership,
} from '../../src/storage/members.js';
import { AnswerBuilder, formatPage, itemJson } from '../../src/reads/format.js';
import type { ManyAnswer } from '../../src/reads/read-pool.js';
import { applyPlain, applyRequest } from '../../src/storage/apply-request.js';
import { decodeCommand } from '../../src/storage/command.js';
import { IdempotencyIndex } from '../../src/storage/idempotency.js';
import { decodeStored, encodeStored, LEGACY_META, type KeyMeta, type StoredValue } from '../../src/storage/key-meta.js';
import { byteKey, INTERNAL_PREFIX, metaOfStored, type KvView } from '../../src/storage/kv-view.js';

const encoder = new TextEncoder();
const TEST_MAX_RESPONSE_BYTES = 1024;
const decoder = new TextDecoder();

/** Voters n1..n3 at client ports 7001..7003 and peer ports 7101..7103. */
export function threeVoters(): Membership {
  return {
    members: [1, 2, 3].map((i) => ({
      id: `n${i}`,
      clientUrl: `http://127.0.0.1:700${i}`,
      peerUrl: `http://127.0.0.1:710${i}`,
      role: 'voter' as const,
    })),
    removed: [],
  };
}

/** A follower's progress as the leader sees it, caught up and heard from unless told otherwise. */
export function progressOf(match: number, extra: Partial<ProgressStatus> = {}): ProgressStatus {
  return { match, next: match + 1, state: 'replicate', recentActive: true, inflight: 0, learner: false, ...extra };
}

export class FakeNode implements ApiNode, AdminNode {
  writes: Uint8Array[] = [];
  writeOutcome: () => Promise<WriteResult> = async () => ({ index: 7, term: 2 });
  readOutcome: () => Promise<number> = async () => 7;
  barriers = 0;
  softState: SoftState = { role: 'leader', leader: 'n1', term: 2 };
  appliedIndex = 7;
  lag = 0;
  pending = { writes: 0, reads: 0 };
  membership: Membership = threeVoters();
  isRemoved = false;
  /** The leader's replication progress per member (status().progress on a leader; lagOf counts from it). */
  progress: Record<string, ProgressStatus> = { n1: progressOf(7), n2: progressOf(7), n3: progressOf(7) };
  /** Membership changes proposed, in order. */
  changes: MemberChange[] = [];
  /**
   * What a membership change does: by default what RaftNode does with a store that keeps members
   * (invalidMemberChange refuses, else the change is applied at index 8).
   */
  changeOutcome: (change: MemberChange) => Promise<WriteResult> = async (change) => {
    const invalid = invalidMemberChange(change, this.membership);
    if (invalid !== null) throw new MembershipChangeError('invalid', invalid);
    this.membership = changedMembership(this.membership, change);
    return { index: 8, term: 2 };
  };
  /** Transfers started, in order. */
  transfers: string[] = [];
  /** What a transfer does: by default the target leads in term 3 a moment later. */
  transferOutcome: (target: string) => TransferResult = (target) => {
    setTimeout(() => (this.softState = { role: 'follower', leader: target, term: 3 }), 5);
    return { ok: true };
  };
  write(command: Uint8Array) {
    this.writes.push(command);
    return this.writeOutcome();
  }
  readBarrier() {
    this.barriers++;
    return this.readOutcome();
  }
  msSinceLeaderContact() {
    return this.lag;
  }
  changeMembership(change: MemberChange) {
    if (this.softState.role !== 'leader') return Promise.reject(new NotLeaderError(this.softState.leader));
    this.changes.push(change);
    return this.changeOutcome(change);
  }
  lagOf(id: string): number | null {
    const pr = this.softState.role === 'leader' ? this.progress[id] : undefined;
    return pr === undefined ? null : Math.max(0, 7 - pr.match);
  }
  transferLeadership(target: string): TransferResult {
    if (this.softState.role !== 'leader') return { ok: false, error: 'not-leader' };
    this.transfers.push(target);
    return this.transferOutcome(target);
  }
  status(): RaftStatus {
    return {
      id: 'n1',
      role: this.softState.role,
      term: 2,
      vote: 'n1',
      leader: this.softState.leader,
      commit: 7,
      applied: 7,
      firstIndex: 1,
      lastIndex: 7,
      leadTransferee: '',
      voters: this.membership.members.filter((m) => m.role === 'voter').map((m) => m.id),
      learners: this.membership.members.filter((m) => m.role === 'learner').map((m) => m.id),
      progress: this.softState.role === 'leader' ? { ...this.progress } : null,
    };
  }
}

export class FakeKv implements ApiKv {
  data = new Map<string, Uint8Array>();
  /** Metadata by key; a key without any reads as written before versioned keys (LEGACY_META). */
  meta = new Map<string, KeyMeta>();
  getSync(key: Uint8Array) {
    return this.data.get(decoder.decode(key));
  }
  getEntrySync(key: Uint8Array): StoredValue | undefined {
    const value = this.getSync(key);
    return value === undefined ? undefined : { value, meta: this.meta.get(decoder.decode(key)) ?? LEGACY_META };
  }
  async scanJson(options: { prefix?: Uint8Array; start?: Uint8Array; limit: number }) {
    const prefix = options.prefix === undefined ? '' : decoder.decode(options.prefix);
    const start = options.start === undefined ? '' : decoder.decode(options.start);
    const keys = [...this.data.keys()].filter((k) => k.startsWith(prefix) && k >= start).sort();
    const page = keys.slice(0, options.limit);
    const next = keys[options.limit];
    return formatPage(
      page.map((k) => [encoder.encode(k), this.data.get(k)!] as [Uint8Array, Uint8Array]),
      next === undefined ? null : encoder.encode(next),
    );
  }
  /** The cap a multi-key read is refused beyond (the read pool's rule, for the API's 413): buildTestApi's. */
  maxResponseBytes = TEST_MAX_RESPONSE_BYTES;
  async getManyJson(keys: readonly Uint8Array[]): Promise<ManyAnswer> {
    const answer = new AnswerBuilder();
    for (const k of keys) {
      const item = itemJson(k, this.getSync(k));
      if (keys.length > 1 && answer.sizeWith(item, null) > this.maxResponseBytes)
        return { tooLarge: { keys: keys.length, fit: answer.count } };
      answer.add(item);
    }
    return { json: answer.finish(null) };
  }
}

/** The client API over a fake node and state machine, with small limits that tests can reach. */
export function buildTestApi(
  node: FakeNode,
  kv: FakeKv,
  options: {
    live?: () => boolean;
    clientUrlOf?: (id: string) => string | undefined;
    limits?: Partial<Limits>;
    metrics?: NodeMetrics;
  } = {},
): ClientApi {
  return buildClientApi({
    nodeId: 'n1',
    clusterId: 'c',
    node,
    kv,
    limits: {
      ...DEFAULT_LIMITS,
      maxKeyBytes: 16,
      maxValueBytes: 64,
      maxPageSize: 5,
      maxResponseBytes: TEST_MAX_RESPONSE_BYTES,
      maxTxnOps: 6,
      maxTxnBytes: 1024,
      ...options.limits,
    },
    logger: createLogger({ level: 'silent', pretty: false }),
    clientUrlOf: options.clientUrlOf ?? (() => undefined),
    live: options.live ?? (() => true),
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
  });
}

export const TEST_PEER_TOKEN = 'test-peer-token-0123456789abcdef';

/** The client API with the admin and join-info routes, as main.ts wires them, over a fake node. */
export function buildTestAdminApi(
  node: FakeNode,
  options: {
    adminToken?: string;
    peerToken?: PeerToken;
    nodeId?: string;
    clientUrlOf?: (id: string) => string | undefined;
    promoteMaxLagEntries?: number;
    electionTimeoutMs?: number;
    metrics?: NodeMetrics;
  } = {},
): ClientApi {
  const peerToken = options.peerToken ?? { token: TEST_PEER_TOKEN, isDevToken: false };
  const app = buildTestApi(node, new FakeKv(), {
    ...(options.clientUrlOf === undefined ? {} : { clientUrlOf: options.clientUrlOf }),
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
  });
  registerAdminRoutes(app, {
    nodeId: options.nodeId ?? 'n1',
    node,
    adminToken: options.adminToken,
    peerToken,
    clientUrlOf: options.clientUrlOf ?? (() => undefined),
    promoteMaxLagEntries: options.promoteMaxLagEntries ?? 1000,
    electionTimeoutMs: options.electionTimeoutMs ?? 100,
    tickMs: 5,
    writeTimeoutMs: 1000,
    logger: createLogger({ level: 'silent', pretty: false }),
  });
  registerJoinInfoRoute(app, {
    clusterId: 'c',
    raft: DEFAULT_TIMING,
    limits: DEFAULT_LIMITS,
    peerToken,
    node,
  });
  return app;
}

/**
 * A node that applies what it is asked to write, through the state machine's own apply functions
 * (src/storage/apply-request.ts), to a FakeKv: conditions, transactions and idempotency records
 * behave as on a real node, one log index per write, without Raft or LevelDB.
 */
export class ApplyingNode extends FakeNode {
  /** Idempotency records and anything else under the internal prefix, by key bytes. */
  readonly internal = new Map<string, Uint8Array>();
  private readonly records = new IdempotencyIndex();
  lastIndex = 10;
  term = 2;

  constructor(readonly kv: FakeKv) {
    super();
  }

  override write(command: Uint8Array): Promise<WriteResult> {
    this.writes.push(command);
    const decoded = decodeCommand(command);
    const index = ++this.lastIndex;
    const view = this.view();
    let result: WriteResult = { index, term: this.term };
    if (decoded.op === 'request') {
      result = { ...result, answer: applyRequest(view, this.records, decoded, index, this.term) };
    } else if (decoded.op !== 'barrier') {
      applyPlain(view, decoded, index);
    }
    this.appliedIndex = index;
    return Promise.resolve(result);
  }

  /** The FakeKv as the state machine's view: user keys in its maps, internal ones here. */
  private view(): KvView {
    const kv = this.kv;
    const internal = this.internal;
    const isInternal = (key: Uint8Array) => key[0] === INTERNAL_PREFIX;
    return {
      get(key) {
        if (isInternal(key)) return internal.get(byteKey(key));
        const entry = kv.getEntrySync(key);
        return entry === undefined ? undefined : encodeStored(entry.meta, entry.value);
      },
      getMeta(key) {
        return metaOfStored(this.get(key));
      },
      put(key, stored) {
        if (isInternal(key)) {
          internal.set(byteKey(key), stored);
          return;
        }
        const { meta, value } = decodeStored(stored);
        kv.data.set(decoder.decode(key), value.slice());
        kv.meta.set(decoder.decode(key), meta);
      },
      delete(key) {
        if (isInternal(key)) {
          internal.delete(byteKey(key));
          return;
        }
        kv.data.delete(decoder.decode(key));
        kv.meta.delete(decoder.decode(key));
      },
    };
  }
}
