// What the runner needs from a system under test, raftkv or etcd alike.
import type { KeySpace } from './keys.js';
import type { NodeMemory, SystemName, SystemSnapshot } from './types.js';

export interface BenchSystem {
  readonly name: SystemName;
  /** e.g. "raftkv 0.1.0 (git 78a6675)" or "etcd 3.4.23". */
  readonly version: string;
  readonly nodeIds: readonly string[];
  clientUrl(id: string): string;
  /** The node every node agrees leads now (waits, bounded, while there is none). */
  leader(): Promise<string>;
  snapshot(): Promise<SystemSnapshot>;
  /** Peak RSS of every node process so far. */
  memory(): NodeMemory[];
  /** Writes every key of the key space with a value from `valueOf` through each API the cases read. */
  preload(keys: KeySpace, valueOf: (i: number) => string): Promise<void>;
  /** Stops every process of the system and removes its files (bounded; safe to call twice). */
  stop(): Promise<void>;
}

/** The first node that is not the leader, so "follower" means the same node run after run. */
export async function followerOf(system: BenchSystem): Promise<string> {
  const leader = await system.leader();
  const follower = system.nodeIds.find((id) => id !== leader);
  if (follower === undefined) throw new Error(`${system.name} has no follower`);
  return follower;
}
