// Snapshot frames (src/snapshot/format.ts): a chunk decodes into pairs that hold exactly their own
// bytes, in one buffer per chunk, and nothing of the frame they came in.
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeChunk, SnapshotFormatError, type Pair } from '../../src/snapshot/format.js';

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);

describe('snapshot chunk frames', () => {
  it('decode into pairs copied out of the frame, one buffer per chunk', () => {
    const pairs: Pair[] = [
      [bytes(1), bytes(10, 11, 12)],
      [bytes(2, 2), bytes()],
      [bytes(3), bytes(30)],
    ];
    // A frame of its own (a Buffer's slice would be a view of the encoder's buffer), so that writing
    // over it below touches nothing else.
    const frame = new Uint8Array(encodeChunk(pairs));
    const decoded = decodeFrame(frame);
    if (decoded.kind !== 'chunk') throw new Error('expected a chunk');
    expect(decoded.pairs.map(([k, v]) => [[...k], [...v]])).toEqual(pairs.map(([k, v]) => [[...k], [...v]]));
    const buffers = new Set(decoded.pairs.flatMap(([k, v]) => [k.buffer, v.buffer]));
    expect(buffers.size).toBe(1);
    expect([...buffers][0]?.byteLength).toBe(1 + 3 + 2 + 0 + 1 + 1);
    frame.fill(0);
    expect([...decoded.pairs[0]![1]]).toEqual([10, 11, 12]);
    expect([...decoded.pairs[2]![0]]).toEqual([3]);
  });

  it('refuse a chunk with an odd count, an empty key or a value that is not binary', () => {
    // encodeChunk packs whatever it is given, as a broken sender could.
    const flat = (values: unknown[]): Uint8Array => encodeChunk([values as unknown as Pair]);
    expect(() => decodeFrame(flat([bytes(1)]))).toThrow(SnapshotFormatError);
    expect(() => decodeFrame(flat([bytes(), bytes(1)]))).toThrow(/non-empty binary key/);
    expect(() => decodeFrame(flat([bytes(1), 'text']))).toThrow(/non-empty binary key/);
  });
});
