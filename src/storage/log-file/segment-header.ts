// The header of a log segment (docs/log-file-proposal.md, "The segment files"): which node and
// cluster the file belongs to, its place in the sequence, and the entry just before its first one.
// The log start and term(firstIndex - 1) come from the oldest segment's header, so they survive the
// deletion of older segments. Used by data dirs of format 4 (the log in files).
//
//   header := magic "raftkvlg" | u16 format | u64 sequence | u64 prevIndex | u64 prevTerm
//             | u64 segmentBytes (format 2 on) | u16 length, cluster id (UTF-8)
//             | u16 length, node id (UTF-8) | u32 CRC-32 of all before
//
// A segment's size is its header's, so segments of different sizes can share a dir (the size a
// build makes new segments with may change) and a file cut short or grown is still told from a
// whole one. Format 1 (stop 33's builds) had no size field: its segments are all 64 MiB.
//
// It is zero-padded to SEGMENT_HEADER_BYTES, where the first unit begins. A header is written and
// synced before the segment gets its name, so it is never torn: a damaged one is corruption.

import { crc32 } from 'node:zlib';
import { CorruptDataError, StorageRefusedError } from '../errors.js';
import { readU64, writeU64 } from './u64.js';

/** Where a segment's first unit begins: the header's fixed room. */
export const SEGMENT_HEADER_BYTES = 4096;

/** The segment format this build writes; it reads this one and FIRST_SEGMENT_FORMAT. */
export const SEGMENT_FORMAT = 2;
/** The first format, which had no size field: each of its segments is FIRST_FORMAT_SEGMENT_BYTES. */
const FIRST_SEGMENT_FORMAT = 1;
const FIRST_FORMAT_SEGMENT_BYTES = 64 * 1024 * 1024;

const MAGIC = new TextEncoder().encode('raftkvlg');
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

export interface SegmentHeader {
  readonly clusterId: string;
  readonly nodeId: string;
  /** The segment's place in the sequence: one more than the segment before it. */
  readonly sequence: number;
  /** The entry just before the segment's first (0 and 0 before index 1). */
  readonly prevIndex: number;
  readonly prevTerm: number;
  /** The size of the segment file: preallocated whole, so a file of another size is damaged. */
  readonly segmentBytes: number;
}

/** The header's bytes, zero-padded to SEGMENT_HEADER_BYTES. */
export function encodeSegmentHeader(header: SegmentHeader): Uint8Array {
  const cluster = utf8.encode(header.clusterId);
  const node = utf8.encode(header.nodeId);
  const length = MAGIC.length + 2 + 8 * 4 + 2 + cluster.length + 2 + node.length;
  if (length + 4 > SEGMENT_HEADER_BYTES || cluster.length > 0xffff || node.length > 0xffff)
    throw new RangeError('the cluster and node ids do not fit in a segment header');
  const bytes = new Uint8Array(SEGMENT_HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  let at = MAGIC.length;
  view.setUint16(at, SEGMENT_FORMAT);
  at += 2;
  for (const value of [header.sequence, header.prevIndex, header.prevTerm, header.segmentBytes]) {
    writeU64(view, at, value);
    at += 8;
  }
  for (const id of [cluster, node]) {
    view.setUint16(at, id.length);
    bytes.set(id, at + 2);
    at += 2 + id.length;
  }
  view.setUint32(at, crc32(bytes.subarray(0, at)));
  return bytes;
}

/**
 * The header at the start of `bytes` (a segment's first SEGMENT_HEADER_BYTES or more). Throws
 * CorruptDataError naming `where` when it is damaged or not a segment, and StorageRefusedError
 * when it is a segment of a newer format than this build reads.
 */
export function decodeSegmentHeader(bytes: Uint8Array, where: string): SegmentHeader {
  const corrupt = (what: string): never => {
    throw new CorruptDataError(`${where}: the segment header ${what}`);
  };
  if (bytes.length < SEGMENT_HEADER_BYTES) corrupt(`is cut short (${bytes.length} bytes)`);
  if (!MAGIC.every((byte, i) => bytes[i] === byte)) corrupt('does not begin with the segment magic');
  const view = new DataView(bytes.buffer, bytes.byteOffset, SEGMENT_HEADER_BYTES);
  let at = MAGIC.length;
  const format = view.getUint16(at);
  at += 2;
  // Any format but the first is read with this one's layout, so that a bit flipped in the format
  // field fails the checksum (corruption) rather than passing for a newer format.
  const numbers: number[] = [];
  for (let k = 0; k < (format === FIRST_SEGMENT_FORMAT ? 3 : 4); k++) {
    numbers.push(readU64(view, at) ?? corrupt('holds a number beyond 2^53'));
    at += 8;
  }
  const ids: string[] = [];
  for (let k = 0; k < 2; k++) {
    const length = view.getUint16(at);
    if (at + 2 + length + 4 > SEGMENT_HEADER_BYTES) corrupt('has an id longer than its room');
    try {
      ids.push(fromUtf8.decode(bytes.subarray(at + 2, at + 2 + length)));
    } catch {
      corrupt('has an id that is not UTF-8');
    }
    at += 2 + length;
  }
  if (view.getUint32(at) !== crc32(bytes.subarray(0, at))) corrupt('fails its checksum');
  if (format !== SEGMENT_FORMAT && format !== FIRST_SEGMENT_FORMAT) {
    throw new StorageRefusedError(
      `${where} is a log segment of format ${format}; this build reads formats ${FIRST_SEGMENT_FORMAT} and ${SEGMENT_FORMAT}: run the raftkv version that wrote it`,
    );
  }
  const [sequence = 0, prevIndex = 0, prevTerm = 0, segmentBytes = FIRST_FORMAT_SEGMENT_BYTES] = numbers;
  const [clusterId = '', nodeId = ''] = ids;
  return { clusterId, nodeId, sequence, prevIndex, prevTerm, segmentBytes };
}
