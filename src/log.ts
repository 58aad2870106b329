// One logger per process: a JSON line per event, or pretty lines when a person watches a terminal
// and pino-pretty is installed (it is not in a production install: see pretty.ts).
import { pino, type Logger } from 'pino';
import { loadPinoPretty } from './pretty.js';

export type { Logger };

export interface LoggerOptions {
  /** Every line carries the node id, so interleaved logs of a cluster stay readable. */
  readonly nodeId?: string;
  readonly level?: string;
  /** Pretty output (when pino-pretty is installed; JSON lines otherwise); defaults to whether stdout is a terminal. */
  readonly pretty?: boolean;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env['RAFTKV_LOG_LEVEL'] ?? 'info';
  const base = options.nodeId === undefined ? {} : { node: options.nodeId };
  const wantPretty = options.pretty ?? process.stdout.isTTY === true;
  const pretty = wantPretty ? loadPinoPretty() : null;
  if (pretty === null) return pino({ level, base });
  // Synchronous pretty printing on the main thread: no transport worker, lines appear in order.
  return pino(
    { level, base },
    pretty({ colorize: true, sync: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' }),
  );
}
