// The seed paper's design, as a baseline the gossip benchmarks run beside their own measurement: every
// daemon reports its map to one controller each second, and the controller broadcasts the merged map
// back each second (so a change takes up to 2 s to reach everyone).

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run with real timers: how long each of `changes` changes, made gapMs apart over n daemons, takes to reach them all. */
export async function controllerBaseline(n: number, gapMs: number, changes: number): Promise<number[]> {
  const local = Array.from({ length: n }, () => new Set<string>());
  const controllerView = new Set<string>();
  const daemonViews = Array.from({ length: n }, () => new Set<string>());
  const timers: NodeJS.Timeout[] = [];
  for (let i = 0; i < n; i++) {
    timers.push(
      setTimeout(
        () =>
          timers.push(
            setInterval(() => {
              for (const x of local[i]!) controllerView.add(x);
            }, 1000),
          ),
        Math.random() * 1000,
      ),
    );
  }
  timers.push(
    setTimeout(
      () =>
        timers.push(
          setInterval(() => {
            for (const v of daemonViews) for (const x of controllerView) v.add(x);
          }, 1000),
        ),
      Math.random() * 1000,
    ),
  );
  const sent = new Map<string, number>();
  const seen = new Map<string, number>();
  const poll = setInterval(() => {
    for (const [id] of sent) if (!seen.has(id) && daemonViews.every((v, i) => v.has(id) || local[i]!.has(id))) seen.set(id, performance.now());
  }, 2);
  for (let c = 0; c < changes; c++) {
    const id = `b${c}`;
    sent.set(id, performance.now());
    local[c % n]!.add(id);
    await sleep(gapMs);
  }
  await sleep(2500);
  clearInterval(poll);
  for (const t of timers) clearInterval(t);
  return [...sent].map(([id, t0]) => (seen.get(id) ?? Infinity) - t0);
}
