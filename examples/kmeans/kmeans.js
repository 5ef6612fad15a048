// k-means with allreduce: no master, no store. Invoke as a group; every member
// makes its own share of the points, and each round the members add up their
// per-cluster sums and counts with one allreduce, so all of them move the
// centroids the same way at the same time.
//
//   peerless fn create kmeans examples/kmeans/kmeans.js --memory 128
//   peerless fn invoke kmeans --instances 'km-{0..3}' -p members 4 -p k 4 -p points 20000 --result
const peerless = require('peerless');

// A small seeded generator, so a run can be repeated: points scattered around k true centres.
function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

async function main(p) {
  const k = Number(p.k ?? 4);
  const n = Number(p.points ?? 20000);
  const me = peerless.instanceId();
  // The group is km-0 ... km-(members-1): this member's ID without its number, and the count.
  const prefix = me.replace(/\d+$/, '');
  const ids = Array.from({ length: Number(p.members ?? 4) }, (_, i) => `${prefix}${i}`);
  const rank = ids.indexOf(me);
  if (rank < 0) return { error: `${me} is not one of ${ids.join(', ')}: invoke with --instances '${prefix}{0..${ids.length - 1}}'` };

  const rand = rng(1000 + rank);
  const truth = Array.from({ length: k }, (_, c) => [10 * Math.cos((2 * Math.PI * c) / k), 10 * Math.sin((2 * Math.PI * c) / k)]);
  const pts = new Float64Array(2 * n);
  for (let i = 0; i < n; i++) {
    const [cx, cy] = truth[i % k];
    pts[2 * i] = cx + (rand() - 0.5) * 4;
    pts[2 * i + 1] = cy + (rand() - 0.5) * 4;
  }
  // Everyone starts from rank 0's first k points: a broadcast.
  let centres = await peerless.broadcast(ids, rank === 0 ? pts.slice(0, 2 * k) : new Float64Array(2 * k));

  let round = 0;
  for (; round < 50; round++) {
    // Per cluster: sum of x, sum of y, count; added up over every member in one allreduce.
    const acc = new Float64Array(3 * k);
    for (let i = 0; i < n; i++) {
      const x = pts[2 * i],
        y = pts[2 * i + 1];
      let best = 0,
        bestD = Infinity;
      for (let c = 0; c < k; c++) {
        const d = (x - centres[2 * c]) ** 2 + (y - centres[2 * c + 1]) ** 2;
        if (d < bestD) (bestD = d), (best = c);
      }
      acc[3 * best] += x;
      acc[3 * best + 1] += y;
      acc[3 * best + 2] += 1;
    }
    const total = await peerless.allreduce(ids, acc, 'sum');
    const next = new Float64Array(2 * k);
    let moved = 0;
    for (let c = 0; c < k; c++) {
      const cnt = total[3 * c + 2] || 1;
      next[2 * c] = total[3 * c] / cnt;
      next[2 * c + 1] = total[3 * c + 1] / cnt;
      moved = Math.max(moved, Math.hypot(next[2 * c] - centres[2 * c], next[2 * c + 1] - centres[2 * c + 1]));
    }
    centres = next;
    if (moved < 1e-6) break;
  }
  const round2 = (v) => Math.round(v * 100) / 100;
  return {
    member: me,
    members: ids.length,
    rounds: round + 1,
    points: n * ids.length,
    centres: Array.from({ length: k }, (_, c) => [round2(centres[2 * c]), round2(centres[2 * c + 1])]).sort((a, b) => a[0] - b[0] || a[1] - b[1]),
  };
}
