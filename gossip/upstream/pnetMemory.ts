import xsalsa20 from 'xsalsa20';

// Works around xsalsa20's WebAssembly memory growth, which @libp2p/pnet (the
// private network's cipher) runs into with many connections or large writes.
// Upstream: the xsalsa20 package (npm xsalsa20, used by @libp2p/pnet) grows its
// one memory in realloc() from each caller's view; we know of no filed issue or
// released fix. Remove this when pnet stops using that package or the package
// grows its memory correctly.

/**
 * The private network's cipher keeps one WebAssembly memory for all connections and, when a write outgrows
 * it, grows it by the size seen from the connection's own (possibly stale) view: with many connections the
 * memory over-grows until it hits its 64 MB cap and the daemon crashes. Growing it once, before any
 * connection exists, gives every connection a view that no write of ours (64 KB pieces) outgrows.
 */
let pnetMemoryReserved = false;
export function reservePnetMemory(): void {
  if (pnetMemoryReserved) return;
  pnetMemoryReserved = true;
  const x = xsalsa20(new Uint8Array(24), new Uint8Array(32));
  x.update(new Uint8Array(16 * 1024 * 1024));
  x.finalize();
}
