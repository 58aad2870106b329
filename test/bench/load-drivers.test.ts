// Both load generators must send the requests a Workload describes: every <var> filled from the
// tables (one draw per request for path and body alike), the mix honoured, and their counts agreeing
// with what a server saw. Checked against a local HTTP server that records every request.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { which } from '../../scripts/bench/host.js';
import { base64, KeySpace } from '../../scripts/bench/keys.js';
import { LoadGenerator } from '../../scripts/bench/load.js';
import { wrkScript } from '../../scripts/bench/lua.js';
import { BenchSession } from '../../scripts/bench/session.js';
import type { ToolName } from '../../scripts/bench/types.js';
import { buildTables, parseTemplate, type Workload } from '../../scripts/bench/workload.js';

interface Seen {
  method: string;
  url: string;
  body: string;
  contentType: string | undefined;
}

let server: Server;
let baseUrl: string;
const seen: Seen[] = [];
const session = new BenchSession();
const keys = new KeySpace(300, 20);
const tables = buildTables(keys, keys.values(8));

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        body: Buffer.concat(chunks).toString('utf8'),
        contentType: req.headers['content-type'],
      });
      res.end('ok');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await session.cleanup();
  server.close();
});

function workload(): Workload {
  return {
    baseUrl,
    requests: [
      {
        method: 'PUT',
        path: '/kv/<key>',
        body: '{"k":"<keyB64>","v":"<valueB64>"}',
        headers: { 'Content-Type': 'application/json' },
        weight: 1,
      },
      { method: 'GET', path: '/kv?prefix=<prefix>&end=<prefixEndB64>', weight: 3 },
    ],
  };
}

const tools: ToolName[] = which('wrk') === null ? ['autocannon'] : ['wrk', 'autocannon'];

describe.each(tools)('the %s driver', (tool) => {
  it('fills every template variable from the tables and honours the mix', async () => {
    seen.length = 0;
    const load = new LoadGenerator(tool, {
      threads: 1,
      timeoutS: 2,
      dir: session.tempDir('raftkv-bench-test-'),
      processes: session.processes,
    });
    const result = await load.run({ workload: workload(), tables, connections: 2, durationS: 1 });
    expect(result.tool).toBe(tool);
    expect(result.requests).toBeGreaterThan(50);
    expect(result.non2xx + result.socketErrors + result.timeouts).toBe(0);
    // The tool may stop with requests in flight that the server saw but the tool never counted.
    expect(seen.length).toBeGreaterThanOrEqual(result.requests);
    expect(seen.length).toBeLessThanOrEqual(result.requests + 4);

    const keySet = new Set(tables.key);
    const prefixes = new Map(keys.prefixes().map((p) => [p, base64(KeySpace.prefixEnd(p))]));
    let puts = 0;
    for (const r of seen) {
      if (r.method === 'PUT') {
        puts++;
        const key = r.url.slice('/kv/'.length);
        expect(keySet.has(key), r.url).toBe(true);
        expect(r.contentType).toBe('application/json');
        const body = JSON.parse(r.body) as { k: string; v: string };
        expect(body.k, "one draw per request: the body has the path's key").toBe(base64(key));
        expect(tables.valueB64).toContain(body.v);
      } else {
        expect(r.method).toBe('GET');
        const url = new URL(r.url, baseUrl);
        const prefix = url.searchParams.get('prefix') ?? '';
        expect(prefixes.get(prefix), r.url).toBe(url.searchParams.get('end'));
      }
    }
    const share = puts / seen.length;
    expect(share).toBeGreaterThan(0.15);
    expect(share).toBeLessThan(0.35);
  }, 20_000);
});

describe('the wrk script', () => {
  it('is generated only from the tables a workload uses, as Lua literals', () => {
    const script = wrkScript({ baseUrl, requests: [{ method: 'GET', path: '/kv/<key>?q="x"', weight: 1 }] }, tables);
    expect(script).toContain('T.key = ');
    expect(script).not.toContain('T.value = ');
    expect(script).toContain('"/kv/" .. T.key[ki] .. "?q=\\"x\\""');
    expect(() => parseTemplate('/kv/<nope>')).toThrow(/unknown template variable/);
  });
});
