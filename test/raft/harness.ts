// An in-memory cluster for unit tests of the Raft core: every Ready is persisted at once, messages
// wait in a network queue until a test delivers them, and every delivered message is written to a
// trace in a compact, human-readable form, so tests read like transcripts of the protocol.

import { changedConf, invalidChange } from '../../src/raft/membership.js';
import { RaftCore, type RaftConfig } from '../../src/raft/core.js';
import { SeededRandom, type Random } from '../../src/raft/prng.js';
import { MemoryStorage } from '../../src/raft/storage.js';
import {
  EntryType,
  type ConfChange,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type ReadState,
} from '../../src/raft/types.js';

export interface TestNode {
  core: RaftCore;
  storage: MemoryStorage;
  /** Data of every applied entry, in order (the empty entries of new leaders included). */
  applied: Entry[];
  readStates: ReadState[];
  failedReads: number[];
  /** The configuration at the applied index: what a restart starts from (the real driver stores it with the state). */
  conf: ConfState;
}

/** The harness's encoding of a membership change in a ConfChange entry (the real driver adds addresses). */
export function encodeConfChange(change: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify(change));
}

export type CoreFactory = (config: RaftConfig) => RaftCore;

export interface ClusterOptions {
  electionTicks?: number;
  heartbeatTicks?: number;
  /**
   * Seed of the election timeout jitter. Without one, every node's timeout is the longest possible,
   * 2 * electionTicks - 1, so a test can expire a follower's leader lease (electionTicks ticks)
   * without its timer firing.
   */
  seed?: number;
  maxMsgBytes?: number;
  maxInflightMsgs?: number;
  maxInflightBytes?: number;
  maxUncommittedBytes?: number;
  factory?: CoreFactory;
  /** Each node's initial storage (default: an empty MemoryStorage). */
  storage?: (id: NodeId, voters: readonly NodeId[]) => MemoryStorage;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

export function text(data: Uint8Array): string {
  return decoder.decode(data);
}

/** "n1->n2 app t2 prev=1/1 [2/2 'x'] commit=1": one line per message, as in a protocol transcript. */
export function describe(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case 'app': {
      const ents = m.entries.map((e) => `${e.index}/${e.term}${e.data.length ? ` '${text(e.data)}'` : ''}`);
      return `${head} prev=${m.index}/${m.logTerm} [${ents.join(' ')}] commit=${m.commit}`;
    }
    case 'appResp':
      return m.reject ? `${head} reject ${m.index} hint=${m.hintIndex}/${m.hintTerm}` : `${head} ok ${m.index}`;
    case 'vote':
    case 'preVote':
      return `${head} last=${m.index}/${m.logTerm}${m.transfer ? ' transfer' : ''}`;
    case 'voteResp':
    case 'preVoteResp':
      return `${head} ${m.reject ? 'reject' : 'grant'}`;
    case 'heartbeat':
      return `${head} commit=${m.commit} round=${m.round}`;
    case 'heartbeatResp':
      return `${head} round=${m.round}`;
    case 'readIndex':
      return `${head} ctx=${m.ctx}`;
    case 'readIndexResp':
      return `${head} ctx=${m.ctx} ${m.reject ? 'reject' : `index=${m.index}`}`;
    case 'timeoutNow':
      return head;
    case 'snap':
      return `${head} snapshot=${m.snapshot.index}/${m.snapshot.term}`;
  }
}

export class TestCluster {
  readonly nodes = new Map<NodeId, TestNode>();
  readonly ids: NodeId[];
  /** Messages sent and not yet delivered or dropped. */
  network: Message[] = [];
  /** Every delivered message, described. */
  trace: string[] = [];
  /** Per node: the state machine (applied entries) of the snapshot it received and will install. */
  private readonly staged = new Map<NodeId, Entry[]>();
  private readonly cut = new Set<string>();
  private readonly options: Required<Omit<ClusterOptions, 'factory' | 'seed' | 'storage'>> & {
    factory: CoreFactory;
    seed: number | undefined;
  };

  constructor(size: number, options: ClusterOptions = {}) {
    this.ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    this.options = {
      electionTicks: options.electionTicks ?? 10,
      heartbeatTicks: options.heartbeatTicks ?? 1,
      seed: options.seed,
      maxMsgBytes: options.maxMsgBytes ?? 1 << 20,
      maxInflightMsgs: options.maxInflightMsgs ?? 256,
      maxInflightBytes: options.maxInflightBytes ?? 0,
      maxUncommittedBytes: options.maxUncommittedBytes ?? 64 << 20,
      factory: options.factory ?? ((config) => new RaftCore(config)),
    };
    for (const id of this.ids) this.start(id, options.storage?.(id, this.ids) ?? new MemoryStorage(this.ids));
  }

  node(id: NodeId): TestNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  core(id: NodeId): RaftCore {
    return this.node(id).core;
  }

  /** (Re)starts `id` from `storage`, as after a crash: only what was persisted survives. */
  start(id: NodeId, storage: MemoryStorage, applied = 0, conf: ConfState = { voters: this.ids, learners: [] }): void {
    const index = this.ids.indexOf(id);
    const core = this.options.factory({
      id,
      voters: conf.voters,
      learners: conf.learners,
      storage,
      random: this.options.seed === undefined ? LONGEST_TIMEOUT : new SeededRandom(this.options.seed * 100 + index),
      electionTicks: this.options.electionTicks,
      heartbeatTicks: this.options.heartbeatTicks,
      applied,
      maxMsgBytes: this.options.maxMsgBytes,
      maxInflightMsgs: this.options.maxInflightMsgs,
      maxInflightBytes: this.options.maxInflightBytes,
      maxUncommittedBytes: this.options.maxUncommittedBytes,
    });
    const previous = this.nodes.get(id);
    this.nodes.set(id, {
      core,
      storage,
      applied: previous?.applied.slice(0, applied) ?? [],
      readStates: [],
      failedReads: [],
      conf,
    });
  }

  /**
   * A new node `id` that joins empty, as `npm run node -- --join` does: no log and no configuration;
   * it takes nothing but a snapshot until one has given it the configuration.
   */
  addNode(id: NodeId): void {
    if (this.nodes.has(id)) throw new Error(`${id} exists`);
    this.ids.push(id);
    this.start(id, new MemoryStorage([]), 0, { voters: [], learners: [] });
  }

  /** Proposes a membership change on `id` (the harness's encoding). */
  changeMembership(id: NodeId, change: ConfChange): ReturnType<RaftCore['proposeConfChange']> {
    const result = this.core(id).proposeConfChange(change, encodeConfChange(change));
    this.process();
    return result;
  }

  /** Crashes `id` and restarts it from what it persisted; its in-flight messages are lost. */
  restart(id: NodeId): void {
    const node = this.node(id);
    this.network = this.network.filter((m) => m.to !== id && m.from !== id);
    this.start(id, node.storage.clone(), node.applied.length, node.conf);
  }

  /** Drains every node's Ready: persist, send, apply, advance. */
  process(): void {
    for (;;) {
      let progressed = false;
      for (const [id, node] of this.nodes) {
        const { core } = node;
        if (!core.hasReady()) continue;
        progressed = true;
        const rd = core.ready();
        this.send(rd.messages);
        if (rd.snapshot !== null) {
          // The driver installs the state it staged when the snapshot arrived.
          const staged = this.staged.get(id);
          if (staged === undefined || staged.length !== rd.snapshot.index)
            throw new Error(`${id}: no staged state for snapshot ${rd.snapshot.index}`);
          node.storage.applySnapshot(rd.snapshot);
          node.applied = staged.slice();
          node.conf = { voters: rd.snapshot.voters.slice(), learners: (rd.snapshot.learners ?? []).slice() };
        }
        if (rd.hardState !== null) node.storage.setHardState(rd.hardState);
        node.storage.append(rd.entries);
        this.send(rd.persistedMessages);
        for (const entry of rd.committedEntries) {
          node.applied.push(entry);
          // The driver applies a membership change like any entry, then tells the core.
          if (entry.type === EntryType.ConfChange) {
            const change = JSON.parse(text(entry.data)) as ConfChange;
            if (invalidChange(change, node.conf) === null) node.conf = changedConf(node.conf, change);
            core.applyConfChange(change, entry.index);
          }
        }
        node.readStates.push(...rd.readStates);
        node.failedReads.push(...rd.failedReads);
        core.advance(rd);
      }
      if (!progressed) return;
    }
  }

  /**
   * A 'snap' message stands for a whole snapshot transfer, which this harness completes at once: the
   * recipient's state is staged (the sender's applied entries up to the snapshot) and the sender's
   * core hears the transfer finished, as the real driver does.
   */
  private deliver(m: Message): void {
    this.trace.push(describe(m));
    if (m.type === 'snap') {
      const sender = this.nodes.get(m.from);
      if (sender === undefined || sender.applied.length < m.snapshot.index)
        throw new Error(`${m.from} cannot send snapshot ${m.snapshot.index}`);
      this.staged.set(m.to, sender.applied.slice(0, m.snapshot.index));
      this.nodes.get(m.to)?.core.step(m);
      sender.core.reportSnapshot(m.to, true);
      return;
    }
    this.nodes.get(m.to)?.core.step(m);
  }

  /** Queues messages; those sent over a cut link are lost, as in a real partition. */
  private send(messages: readonly Message[]): void {
    for (const m of messages) if (!this.cut.has(`${m.from}->${m.to}`)) this.network.push(m);
  }

  /**
   * Delivers messages (and the messages they cause) until the network is quiet, dropping those
   * that match `lose`.
   */
  deliverAll(lose: (m: Message) => boolean = () => false, maxMessages = 10_000): void {
    this.process();
    let delivered = 0;
    while (this.network.length > 0) {
      const m = this.network.shift();
      if (m === undefined) break;
      if (++delivered > maxMessages) throw new Error('deliverAll: the cluster did not go quiet');
      if (this.cut.has(`${m.from}->${m.to}`) || lose(m)) continue;
      this.deliver(m);
      this.process();
    }
  }

  /** Delivers only the messages matching `filter`, leaving the rest queued. */
  deliverWhere(filter: (m: Message) => boolean): void {
    this.process();
    const now = this.network.filter(filter);
    this.network = this.network.filter((m) => !filter(m));
    for (const m of now) {
      if (this.cut.has(`${m.from}->${m.to}`)) continue;
      this.deliver(m);
    }
    this.process();
  }

  /** Drops every queued message matching `filter`. */
  dropWhere(filter: (m: Message) => boolean): void {
    this.process();
    this.network = this.network.filter((m) => !filter(m));
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) this.core(id).tick();
    this.process();
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) for (const id of this.ids) this.core(id).tick();
    this.process();
  }

  /**
   * One heartbeat round from leader `id`, delivered: how followers learn a commit that moved after
   * the last append they got (RaftCore.maybeCommitAndReplicate sends no append for the commit alone).
   */
  heartbeat(id: NodeId): void {
    if (this.core(id).status().role !== 'leader') throw new Error(`${id} is not the leader`);
    this.tick(id, this.options.heartbeatTicks);
    this.deliverAll();
    if (this.core(id).status().role !== 'leader') throw new Error(`${id} lost its leadership in the heartbeat round`);
  }

  /** Ticks `id` alone until its election timer fires and it starts a (pre-)campaign. */
  timeout(id: NodeId): void {
    const core = this.core(id);
    const before = core.status();
    const fired = (): boolean => {
      const now = core.status();
      return now.role !== 'follower' && (now.role !== before.role || now.term !== before.term);
    };
    for (let i = 0; i < 2 * this.options.electionTicks && !fired(); i++) core.tick();
    if (!fired()) throw new Error(`${id} did not time out`);
    this.process();
  }

  /**
   * Ticks the given followers that know a leader through an election timeout without hearing from
   * it, as when their leader died: afterwards they no longer ignore (pre)votes (CheckQuorum's lease).
   */
  expireLeases(...ids: NodeId[]): void {
    for (const id of ids) {
      const { role, leader } = this.core(id).status();
      if (role !== 'follower' || leader === '') continue;
      this.tick(id, this.options.electionTicks);
      if (this.core(id).status().role !== 'follower') throw new Error(`${id} campaigned while its lease expired`);
    }
  }

  /** Makes `id` leader: the others' leases expire, its timer fires, the election runs to completion. */
  elect(id: NodeId): void {
    this.expireLeases(...this.ids.filter((other) => other !== id));
    this.timeout(id);
    this.deliverAll();
    const role = this.core(id).status().role;
    if (role !== 'leader') throw new Error(`${id} did not win its election (it is ${role})`);
  }

  /** Cuts both directions between `a` and every node in `others`. */
  partition(a: NodeId, ...others: NodeId[]): void {
    for (const b of others) {
      this.cut.add(`${a}->${b}`);
      this.cut.add(`${b}->${a}`);
    }
  }

  isolate(id: NodeId): void {
    this.partition(id, ...this.ids.filter((other) => other !== id));
  }

  cutOneWay(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}->${to}`);
  }

  heal(): void {
    this.cut.clear();
  }

  propose(id: NodeId, ...commands: string[]): ReturnType<RaftCore['propose']> {
    const result = this.core(id).propose(commands.map(bytes));
    this.process();
    return result;
  }

  /** Compacts `id`'s log up to `index` (at most what it applied), as the driver does after a snapshot. */
  compact(id: NodeId, index: number): void {
    const node = this.node(id);
    if (index > node.applied.length)
      throw new Error(`${id} cannot compact to ${index}: it applied ${node.applied.length}`);
    node.storage.compact(index);
  }

  /** The node's log as "index/term" strings, empty entries marked with ∅; compacted entries are left out. */
  logOf(id: NodeId): string[] {
    const { storage } = this.node(id);
    const last = storage.lastIndex();
    if (last < storage.firstIndex()) return [];
    return storage
      .entries(storage.firstIndex(), last + 1, Infinity)
      .map((e) => `${e.index}/${e.term}${e.data.length ? '' : '∅'}`);
  }

  /** Applied commands, as text, with the empty entries of new leaders left out. */
  appliedOf(id: NodeId): string[] {
    return this.node(id)
      .applied.filter((e) => e.data.length > 0 && e.type === EntryType.Normal)
      .map((e) => text(e.data));
  }

  leaders(): NodeId[] {
    return this.ids.filter((id) => this.core(id).status().role === 'leader');
  }

  /** Takes the trace so far and starts a new one. */
  takeTrace(): string[] {
    const trace = this.trace;
    this.trace = [];
    return trace;
  }
}

/** Always the longest election timeout: deterministic without a seed (see ClusterOptions.seed). */
const LONGEST_TIMEOUT: Random = { int: (n) => n - 1 };
