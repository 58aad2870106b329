// GET /backup on the client port: the node's applied state as one backup file (src/snapshot/backup-file.ts),
// streamed. Admin-only (admin-auth.ts).
//
// Consistency: the file is one LevelDB snapshot of the state machine (NodeStorage.openSnapshotSource),
// so its pairs are exactly the state at the index and term its header names, even while writes go
// on. It is THIS node's applied state: a follower's may lag the leader's; the README says to take it
// from the leader, or from any node right after a linearizable read there.
//
// Bounds: one backup at a time per node (each holds a LevelDB snapshot and an iterator open: the
// compaction of everything it sees waits for it); one chunk (~256 KiB, CHUNK_BYTES) read and encoded at a time,
// the next only once the response has drained, so a node of any size streams a backup of any size
// without building it in memory, and its loop keeps turning (heartbeats) between chunks. A client
// that leaves, or takes nothing for STALL_TIMEOUT_MS, ends the backup and releases the snapshot;
// so does the node stopping.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { backupFilePieces } from '../snapshot/backup-file.js';
import type { SnapshotSource } from '../storage/node-storage.js';
import { AdminAuth } from './admin-auth.js';
import { sendError } from './errors.js';
import { ClientGoneError, writePieces } from './write-pieces.js';

export const BACKUP_PATH = '/backup';
/** How long a backup waits for a client that takes no data before it gives up. */
export const STALL_TIMEOUT_MS = 60_000;

export interface BackupRouteOptions {
  readonly clusterId: string;
  readonly openSource: () => Promise<SnapshotSource>;
  /** RAFTKV_ADMIN_TOKEN, or undefined: loopback only. */
  readonly adminToken: string | undefined;
  readonly logger: Logger;
  readonly stallTimeoutMs?: number;
}

/** Registers GET /backup on the client API (before it listens); generic in the app's logger type. */
export function registerBackupRoute<L extends FastifyBaseLogger>(
  app: FastifyInstance<Server, IncomingMessage, ServerResponse, L>,
  options: BackupRouteOptions,
): void {
  const auth = new AdminAuth(options.adminToken);
  const log = options.logger.child({ component: 'backup' });
  const stallTimeoutMs = options.stallTimeoutMs ?? STALL_TIMEOUT_MS;
  /** Set from the moment a backup is admitted (before its source opens): at most one at a time. */
  let busy = false;
  let running: ServerResponse | null = null;

  // A stopping node ends a backup in flight (the client gets a cut-off file, which restore refuses)
  // instead of waiting for a slow client; before the server's close, which would wait for it.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    running?.destroy();
  });

  // No automatic HEAD route: Node ignores the body of a HEAD answer, so write() never pushes back
  // and a HEAD would read the whole state machine for nothing.
  app.get(BACKUP_PATH, { onRequest: auth.hook(), exposeHeadRoute: false }, async (request, reply) => {
    if (busy) {
      return sendError(
        reply,
        503,
        'backup_in_progress',
        'this node is already sending a backup: wait for it to finish, or take one from another node',
        {
          'retry-after': '10',
        },
      );
    }
    busy = true;
    let source: SnapshotSource;
    try {
      source = await options.openSource();
    } catch (error) {
      busy = false;
      log.error({ err: error }, 'cannot open a snapshot of the state machine for a backup');
      return sendError(
        reply,
        503,
        'unavailable',
        `cannot read this node's state for a backup: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    if (closing) {
      busy = false;
      await source.close();
      return sendError(reply, 503, 'stopping', 'this node is stopping', { 'retry-after': '1' });
    }
    const response = reply.raw;
    const started = Date.now();
    const where = { index: source.index, term: source.term, remote: request.raw.socket?.remoteAddress };
    try {
      running = response;
      reply.hijack();
      log.info(where, 'sending a backup');
      response.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-disposition': `attachment; filename="${backupFileName(options.clusterId, source.index)}"`,
        'cache-control': 'no-store',
        'x-raft-index': String(source.index),
        'x-raft-term': String(source.term),
      });
      const bytes = await writePieces(response, backupFilePieces(source, { clusterId: options.clusterId }), {
        stallTimeoutMs,
      });
      response.end();
      log.info({ ...where, bytes, ms: Date.now() - started }, 'backup sent');
    } catch (error) {
      // Headers are gone: the only way to say "failed" is to cut the connection. The file then has
      // no trailer (or a partial frame), and restore refuses it.
      response.destroy();
      if (error instanceof ClientGoneError) log.warn({ ...where, reason: error.message }, 'backup abandoned');
      else log.error({ ...where, err: error }, 'backup failed');
    } finally {
      running = null;
      busy = false;
      await source.close();
    }
  });
}

/** `raftkv-<clusterId>-<index>.snap`, with anything but [A-Za-z0-9._-] in the cluster id made '_' (it goes into a header and a file name). */
export function backupFileName(clusterId: string, index: number): string {
  return `raftkv-${clusterId.replace(/[^A-Za-z0-9._-]/g, '_')}-${index}.snap`;
}
