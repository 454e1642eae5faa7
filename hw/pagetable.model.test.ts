// Seeded differential test: random map/unmap sequences on each format against a plain
// interval-list reference, checking runs, walks, unmapped byte counts, the structural
// invariants (counts, no empty non-root table, aligned leaves at allowed depths, chunk
// lengths) and
// that every earlier table version still reads as it did.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PT_CASES, clusteredAddr, lcg } from './testutil.js';
import { READ, RW, WRITE, depthsForSizes } from './format.js';
import { PageTable, PtNode, emptyTable, leafDepth, leafPfn, map, mapRuns, unmap, walk, type MapRun } from './pagetable.js';
import { PtRun, runs } from './ptiter.js';

interface Iv {
  s: bigint;
  e: bigint;
  pa: bigint;
  prot: number;
}

function refUnmap(ref: Iv[], s: bigint, e: bigint): { ref: Iv[]; unmapped: bigint } {
  const out: Iv[] = [];
  let unmapped = 0n;
  for (const iv of ref) {
    if (iv.e <= s || iv.s >= e) {
      out.push(iv);
      continue;
    }
    if (iv.s < s) out.push({ ...iv, e: s });
    if (iv.e > e) out.push({ s: e, e: iv.e, pa: iv.pa + (e - iv.s), prot: iv.prot });
    unmapped += (iv.e < e ? iv.e : e) - (iv.s > s ? iv.s : s);
  }
  return { ref: out, unmapped };
}

function refRuns(ref: Iv[]): PtRun[] {
  const out: PtRun[] = [];
  for (const iv of [...ref].sort((a, b) => (a.s < b.s ? -1 : 1))) {
    const p = out[out.length - 1];
    if (p && p.iova + p.length === iv.s && p.pa + p.length === iv.pa && p.prot === iv.prot) p.length += iv.e - iv.s;
    else out.push({ iova: iv.s, pa: iv.pa, length: iv.e - iv.s, prot: iv.prot });
  }
  return out;
}

/** Run chunks seen by checkStructure (the walk must meet some for the test to cover them). */
let runChunks = 0;

function checkStructure(pt: PageTable): void {
  const f = pt.format;
  let nodes = 0;
  const leaves = new Array<number>(f.levels).fill(0);
  const rec = (n: PtNode, depth: number, isRoot: boolean): void => {
    nodes++;
    const used = n.slots.filter((x) => x !== undefined).length;
    assert.is(n.used, used);
    assert.is(n.slots.length, 512);
    if (!isRoot) assert.ok(used > 0, 'empty non-root table page');
    // Chunk index and chunks are at most 16 x 32 long; an array is never longer than
    // its last entry needs once an unmap wrote it, and never holds a slot past 512.
    assert.ok(n.chunks.length <= 16, 'chunk index too long');
    // A run chunk (a number) sits only at granule depth.
    for (const ch of n.chunks) {
      if (typeof ch === 'number') runChunks++;
      if (typeof ch === 'number') assert.ok(depth === f.levels - 1 && Number.isSafeInteger(ch + 31 * 64), `run chunk ${ch} at depth ${depth}`);
      else if (ch !== undefined) assert.ok(ch.length > 0 && ch.length <= 32, `chunk of ${ch.length}`);
    }
    for (const x of n.slots) {
      if (typeof x === 'number' || typeof x === 'bigint') {
        // Plain checks: uvu asserts per leaf would dominate the run time.
        if (leafDepth(x) !== depth || !(pt.allowedDepths & (1 << depth)) || leafPfn(x) % f.spans[depth]! !== 0) {
          assert.unreachable(`bad leaf ${String(x)} at depth ${depth}`);
        }
        leaves[depth]!++;
      } else if (x instanceof PtNode) rec(x, depth + 1, false);
    }
  };
  rec(pt.root, 0, true);
  assert.is(pt.nodes, nodes);
  assert.equal([...pt.leaves], leaves);
}

for (const [f, sizes, units] of PT_CASES) {
  test(`${f.name}: random map/unmap agrees with an interval reference`, () => {
    const rnd = lcg(f.iovaBits * 7919 + Number(sizes % 1000n));
    const g = units[0]!;
    const big = units[2]!;
    const addr = clusteredAddr(rnd, units);
    let pt = emptyTable(f, depthsForSizes(f, sizes));
    let ref: Iv[] = [];
    runChunks = 0;
    const history: [PageTable, PtRun[]][] = [];
    for (let step = 0; step < 400; step++) {
      const a = addr();
      const b = addr();
      const s = a < b ? a : b;
      const e = a < b ? b : a + g;
      if (rnd(3) === 0) {
        const r = unmap(pt, s, e - s);
        const rr = refUnmap(ref, s, e);
        assert.is(r.unmapped, rr.unmapped);
        pt = r.pt;
        ref = rr.ref;
      } else {
        // Long ranges keep pa congruent to iova (huge leaves); short ones may shift it
        // by a granule (forcing small leaves) without making the test byte-proportional.
        const shift = e - s <= 4n * units[1]! ? BigInt(rnd(2)) * g : 0n;
        const pa = s + BigInt(rnd(4)) * units[1]! + shift + big * 4n;
        const prot = [READ, WRITE, RW][rnd(3)]!;
        const overlaps = ref.some((iv) => iv.s < e && iv.e > s);
        if (overlaps) {
          assert.throws(() => map(pt, s, pa, e - s, prot), /existing/);
          continue;
        }
        pt = map(pt, s, pa, e - s, prot);
        ref.push({ s, e, pa, prot });
      }
      const want = refRuns(ref);
      assert.equal(runs(pt), want);
      checkStructure(pt);
      const probe = addr() + BigInt(rnd(64));
      const hit = ref.find((iv) => iv.s <= probe && probe < iv.e);
      const w = walk(pt, probe);
      assert.equal(w && { pa: w.pa, prot: w.prot }, hit ? { pa: hit.pa + (probe - hit.s), prot: hit.prot } : null);
      if (step % 40 === 0) history.push([pt, want]);
    }
    for (const [old, want] of history) assert.equal(runs(old), want);
    assert.ok(runChunks > 0, 'no run chunk formed');
  });
}

for (const [f, sizes, units] of PT_CASES) {
  test(`${f.name}: mapRuns equals mapping its runs one by one, and leaves every older table as it was`, () => {
    const rnd = lcg(f.iovaBits * 31 + 5);
    const g = units[0]!;
    const base = 0x40000000n;
    let batched = emptyTable(f, depthsForSizes(f, sizes));
    let single = batched;
    const older: { pt: PageTable; runs: string }[] = [];
    const show = (pt: PageTable) => JSON.stringify(runs(pt), (_, v) => (typeof v === 'bigint' ? v.toString(16) : v));
    let cursor = base;
    for (let step = 0; step < 200; step++) {
      // An area of 1-6 runs, mostly contiguous in IOVA (some with gaps, so that several
      // runs share a table page with holes between them), each 1-700 granules at a
      // scattered PA (some aligned for large leaves, many crossing table pages).
      const rs: MapRun[] = [];
      let iova = cursor;
      for (let k = 1 + rnd(6); k > 0; k--) {
        const length = BigInt(1 + rnd(700)) * g;
        const pa = (rnd(2) ? units[1]! * BigInt(1 + rnd(64)) : 0x100000000n + BigInt(rnd(4096)) * g) + (rnd(2) ? 0n : BigInt(rnd(512)) * g);
        rs.push({ iova, pa, length });
        iova += length + (rnd(4) === 0 ? BigInt(rnd(1200)) * g : 0n);
      }
      const prot = 1 + rnd(3);
      older.push({ pt: batched, runs: show(batched) });
      const counters = { nodesTouched: 0, leafWrites: 0 };
      // Given in any order, the runs map the same (unordered ones take the run-by-run path).
      const reversed = rs.length > 1 && rnd(8) === 0;
      batched = mapRuns(batched, reversed ? [...rs].reverse() : rs, prot, counters);
      // Ordered runs go down together: no table page is written twice.
      if (!reversed) assert.ok(counters.nodesTouched <= batched.nodes, `step ${step}: ${counters.nodesTouched} writes for ${batched.nodes} pages`);
      single = rs.reduce((t, r) => map(t, r.iova, r.pa, r.length, prot), single);
      cursor = iova + BigInt(rnd(3)) * g;
      if (rnd(4) === 0) {
        const s = base + BigInt(rnd(Number((cursor - base) / g))) * g;
        const len = BigInt(1 + rnd(2000)) * g;
        batched = unmap(batched, s, len).pt;
        single = unmap(single, s, len).pt;
      }
      if (step % 20 === 0) checkStructure(batched);
      assert.is(show(batched), show(single), `step ${step}`);
      assert.is(batched.nodes, single.nodes);
      assert.equal([...batched.leaves], [...single.leaves]);
    }
    checkStructure(batched);
    for (const o of older) assert.is(show(o.pt), o.runs, 'an older table changed');
    // An overlapping run fails as map does, and the table it was given is unchanged.
    const at = cursor + 8n * g;
    batched = map(batched, at, 0x100000000n, g, 3);
    const now = show(batched);
    assert.throws(() => mapRuns(batched, [{ iova: cursor + 64n * g, pa: 0x100000000n, length: g }, { iova: at, pa: 0x100000000n, length: g }], 3), /map over existing mapping/);
    assert.is(show(batched), now);
  });
}

test.run();
