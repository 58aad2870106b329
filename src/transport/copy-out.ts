// Copies byte views out of the buffer they point into (a request body, a snapshot frame) into one
// new buffer of exactly their bytes, returning a view of it for each, in order.
//
// Why one buffer and not one per view: `new Uint8Array(n)` over 64 bytes costs V8 a backing-store
// allocation and, later, a sweep on a GC thread, about 3 us per entry of an append on the benchmark
// machine (BENCHMARKS.md profiling step 17). Why copy at all: a view keeps its whole buffer alive,
// and what a node keeps (log entries, snapshot pairs) must not pin a body of up to 32 MiB.
// The copies share one buffer, so any one of them keeps all of their bytes alive.

export function copyOut(views: readonly Uint8Array[]): Uint8Array[] {
  if (views.length === 0) return [];
  let bytes = 0;
  for (const view of views) bytes += view.byteLength;
  const own = new Uint8Array(bytes);
  const copies: Uint8Array[] = new Array<Uint8Array>(views.length);
  let at = 0;
  for (let i = 0; i < views.length; i++) {
    const view = views[i]!;
    own.set(view, at);
    copies[i] = own.subarray(at, at + view.byteLength);
    at += view.byteLength;
  }
  return copies;
}
