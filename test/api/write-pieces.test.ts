// Back-pressure of writePieces (src/api/write-pieces.ts): the next piece is pulled only once the
// response drained; a closed or stalled response ends the writing with ClientGoneError.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ClientGoneError, writePieces } from '../../src/api/write-pieces.js';

/** A response that takes each write only when the test says so (every write fills it: highWaterMark 1). */
function heldResponse(): { response: Writable; release: () => void; written: () => number } {
  const held: (() => void)[] = [];
  let written = 0;
  const response = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _encoding, callback) {
      written += chunk.byteLength;
      held.push(() => callback());
    },
  });
  return { response, release: () => held.shift()?.(), written: () => written };
}

/** `count` pieces of `size` bytes, counting how many were pulled. */
function counted(count: number, size = 8): { pieces: AsyncGenerator<Uint8Array>; pulled: () => number } {
  let pulled = 0;
  async function* pieces(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < count; i++) {
      pulled++;
      yield new Uint8Array(size).fill(i);
    }
  }
  return { pieces: pieces(), pulled: () => pulled };
}

async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

describe('writePieces', () => {
  it('pulls the next piece only after the response drained', async () => {
    const { response, release, written } = heldResponse();
    const { pieces, pulled } = counted(5);
    const done = writePieces(response, pieces, { stallTimeoutMs: 60_000 });
    await turns(20);
    // Nothing drained yet: one piece in the response, none more asked for.
    expect(pulled()).toBe(1);
    expect(written()).toBe(8);
    release();
    await turns(20);
    expect(pulled()).toBe(2);
    for (let i = 0; i < 10; i++) {
      release();
      await turns(5);
    }
    expect(await done).toBe(40);
    expect(pulled()).toBe(5);
  });

  it('ends with ClientGoneError when the response closes while it waits, and stops pulling', async () => {
    const { response } = heldResponse();
    const { pieces, pulled } = counted(1000);
    const done = writePieces(response, pieces, { stallTimeoutMs: 60_000 });
    await turns(5);
    response.destroy();
    await expect(done).rejects.toBeInstanceOf(ClientGoneError);
    expect(pulled()).toBe(1);
  });

  it('ends with ClientGoneError when the client takes nothing for stallTimeoutMs', async () => {
    const { response } = heldResponse();
    const { pieces } = counted(1000);
    await expect(writePieces(response, pieces, { stallTimeoutMs: 50 })).rejects.toThrow(/took no data for 50 ms/);
  });

  it('refuses to write into a response that is already closed', async () => {
    const { response } = heldResponse();
    response.destroy();
    const { pieces, pulled } = counted(3);
    await expect(writePieces(response, pieces, { stallTimeoutMs: 60_000 })).rejects.toBeInstanceOf(ClientGoneError);
    expect(pulled()).toBe(1);
  });
});
