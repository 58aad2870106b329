// The simulated network: delays (hence reordering), loss, duplication, and partitions, symmetric or
// one-way, all decided by the run's seeded PRNG.
import type { SeededRandom } from '../../../src/raft/prng.js';
import type { Message, NodeId } from '../../../src/raft/types.js';

/** A network fault in force until `until` (a step), unless healed earlier. */
interface ActiveFault {
  readonly links: readonly string[];
  readonly drop: number;
  readonly duplicate: number;
  readonly until: number;
}

export class SimNetwork {
  private readonly inFlight = new Map<number, Message[]>();
  private faults: ActiveFault[] = [];
  private blocked = new Set<string>();
  private dropRate = 0;
  private duplicateRate = 0;
  sent = 0;
  delivered = 0;

  constructor(private readonly random: SeededRandom) {}

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.has(`${from}->${to}`);
  }

  /** Whether `id` can currently send to none of `all` (the others). */
  isCutOff(id: NodeId, all: readonly NodeId[]): boolean {
    return all.every((other) => other === id || this.isBlocked(id, other));
  }

  /** Loses every message on the given directed links ("a->b") until step `until`. */
  cut(links: readonly (readonly [NodeId, NodeId])[], until: number): void {
    const names = links.filter(([a, b]) => a !== b).map(([a, b]) => `${a}->${b}`);
    this.add({ links: names, drop: 0, duplicate: 0, until });
  }

  lossy(drop: number, duplicate: number, until: number): void {
    this.add({ links: [], drop, duplicate, until });
  }

  healAll(): void {
    this.faults = [];
    this.recompute();
  }

  /** Ends the faults whose time is up. */
  expire(now: number): void {
    const before = this.faults.length;
    this.faults = this.faults.filter((f) => f.until > now);
    if (this.faults.length !== before) this.recompute();
  }

  /** The drop probability in force now (a lossy fault), for what travels outside `send` (snapshots). */
  get currentDropRate(): number {
    return this.dropRate;
  }

  get faultCount(): number {
    return this.faults.length;
  }

  private add(fault: ActiveFault): void {
    this.faults.push(fault);
    this.recompute();
  }

  private recompute(): void {
    this.blocked = new Set(this.faults.flatMap((f) => f.links));
    this.dropRate = Math.max(0, ...this.faults.map((f) => f.drop));
    this.duplicateRate = Math.max(0, ...this.faults.map((f) => f.duplicate));
  }

  send(m: Message, now: number): void {
    this.sent++;
    if (this.isBlocked(m.from, m.to) || this.random.chance(this.dropRate)) return;
    this.enqueue(m, now);
    if (this.random.chance(this.duplicateRate)) this.enqueue(m, now);
  }

  /** Messages due at `now`, in random order; a partition formed meanwhile still stops them. */
  due(now: number): Message[] {
    const batch = this.inFlight.get(now);
    if (batch === undefined) return [];
    this.inFlight.delete(now);
    for (let i = batch.length - 1; i > 0; i--) {
      const j = this.random.int(i + 1);
      const tmp = batch[i] as Message;
      batch[i] = batch[j] as Message;
      batch[j] = tmp;
    }
    const out = batch.filter((m) => !this.isBlocked(m.from, m.to));
    this.delivered += out.length;
    return out;
  }

  private enqueue(m: Message, now: number): void {
    // Mostly a step or three; sometimes much later, which reorders messages across rounds.
    const delay = this.random.chance(0.05) ? 4 + this.random.int(40) : 1 + this.random.int(3);
    const at = now + delay;
    const batch = this.inFlight.get(at);
    if (batch === undefined) this.inFlight.set(at, [m]);
    else batch.push(m);
  }
}
