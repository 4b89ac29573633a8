// Preloaded into a measured server (`node --expose-gc --import bench/gc-probe.mjs ...`): on SIGUSR2
// it runs a full garbage collection and prints {"msg":"gc-probe", seq, rss, heapUsed, external}
// (bytes), so the bench's memory readings do not depend on when V8 last collected. The hub's
// embedded store leaves hundreds of MiB of startup garbage that a later GC returns, which would
// otherwise swamp a per-connection figure.

let seq = 0;
process.on('SIGUSR2', () => {
  globalThis.gc?.();
  const m = process.memoryUsage();
  process.stdout.write(
    `${JSON.stringify({ msg: 'gc-probe', seq: ++seq, rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers })}\n`,
  );
});
