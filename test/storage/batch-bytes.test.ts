import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { batchBytes, prefixedBytes } from '../../src/storage/batch-bytes.js';
import { delOp, openDatabase, putOp, writeBatch, type Database } from '../../src/storage/database.js';
import { logKey } from '../../src/storage/codec.js';
import { makeTempDir } from './helpers.js';

describe('batch bytes', () => {
  it('hands out zeroed views that never share a byte, across slabs, and plain arrays beyond the carving limit', () => {
    const views: Uint8Array[] = [];
    // 3,000 views of 100 bytes span several 64 KiB slabs.
    for (let i = 0; i < 3000; i++) {
      const view = batchBytes(100);
      expect(view.length).toBe(100);
      expect(view.every((b) => b === 0)).toBe(true);
      view.fill(i % 251);
      views.push(view);
    }
    views.forEach((view, i) => expect(view.every((b) => b === i % 251)).toBe(true));
    const large = batchBytes(10_000);
    expect(large.byteOffset).toBe(0);
    expect(large.buffer.byteLength).toBe(10_000);
    expect(prefixedBytes(new Uint8Array([1, 2]), new Uint8Array([3]))).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('logKey writes the 8-byte big-endian index, also above 2^32', () => {
    for (const index of [0, 1, 255, 256, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER]) {
      const expected = new Uint8Array(8);
      new DataView(expected.buffer).setBigUint64(0, BigInt(index));
      expect(logKey(index)).toEqual(expected);
    }
  });
});

describe('batch operations', () => {
  let dir: string | undefined;
  let db: Database | undefined;
  afterEach(async () => {
    await db?.db.close();
    if (dir !== undefined) await fs.rm(dir, { recursive: true, force: true });
    db = undefined;
    dir = undefined;
  });

  it("carry the keys abstract-level's sublevels read back, and write and delete through them", async () => {
    dir = await makeTempDir();
    db = await openDatabase(path.resolve(dir, 'db'));
    const key = new Uint8Array([0x61, 0x62]);
    const ops = [
      putOp(db.log, logKey(7), new Uint8Array([1])),
      putOp(db.sm, key, new Uint8Array([2])),
      putOp(db.meta, key, new Uint8Array([3])),
    ];
    expect(ops[0]!.key).toEqual(db.log.prefixKey(logKey(7), 'view', false));
    expect(ops[1]!.key).toEqual(db.sm.prefixKey(key, 'view', false));
    await writeBatch(db.db, ops, { sync: true });
    expect(db.log.getSync(logKey(7))).toEqual(Buffer.from([1]));
    expect(db.sm.getSync(key)).toEqual(Buffer.from([2]));
    expect(db.meta.getSync(key)).toEqual(Buffer.from([3]));
    await writeBatch(db.db, [delOp(db.sm, key)], { sync: true });
    expect(db.sm.getSync(key)).toBeUndefined();
    expect(db.meta.getSync(key)).toEqual(Buffer.from([3]));
  });

  it('copies every key and value when called, and deletes and puts in one batch', async () => {
    dir = await makeTempDir();
    db = await openDatabase(path.resolve(dir, 'db'));
    const value = new Uint8Array([9, 9]);
    const ops = [putOp(db.sm, new Uint8Array([1]), value), putOp(db.sm, new Uint8Array([2]), value)];
    const written = writeBatch(db.db, ops, { sync: true });
    value.fill(0); // the call copied every key and value before it returned (batch-bytes.ts relies on it)
    await written;
    expect(db.sm.getSync(new Uint8Array([1]))).toEqual(Buffer.from([9, 9]));
    await writeBatch(db.db, [delOp(db.sm, new Uint8Array([1])), putOp(db.sm, new Uint8Array([3]), value)], {
      sync: false,
    });
    expect(db.sm.getSync(new Uint8Array([1]))).toBeUndefined();
    expect(db.sm.getSync(new Uint8Array([3]))).toEqual(Buffer.from([0, 0]));
    await db.db.close();
    db = undefined;
  });
});
