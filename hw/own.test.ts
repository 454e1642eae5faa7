// In-place page-table writes (hw/own.ts): seeded map/unmap sequences run twice, once
// persistently and once inside epochs (a new one every few dozen operations, as the
// in-place stepper takes one per working copy). Both must read the same after every
// operation; a table from an earlier epoch must never change again; an operation rolled
// back through the undo log must leave its table exactly as it was (slots, counts,
// chunk lengths and ownership masks); and inside an epoch the table really is written
// in place (the same object comes back).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PT_CASES, clusteredAddr, lcg } from './testutil.js';
import { VTD_SL, depthsForSizes } from './format.js';
import { PageTable, PtNode, emptyTable, map, mapRuns, unmap, type MapRun } from './pagetable.js';
import { runs } from './ptiter.js';
import { closeEpoch, newEpoch, openEpoch, type HwUndo } from './own.js';

/** The undo log's contract (core/undo.ts), for plain targets. */
class Log implements HwUndo {
  ops: [object, PropertyKey, unknown][] = [];
  record(target: object, key: PropertyKey, old: unknown): void {
    this.ops.push([target, key, old]);
  }
  rollback(): void {
    for (let i = this.ops.length - 1; i >= 0; i--) {
      const [t, k, old] = this.ops[i]!;
      (t as Record<PropertyKey, unknown>)[k] = old;
    }
    this.ops = [];
  }
}

const show = (pt: PageTable): string => JSON.stringify(runs(pt), (_, v) => (typeof v === 'bigint' ? v.toString(16) : v));

/** Everything a table holds, chunk lengths and ownership masks included. */
function digest(pt: PageTable): string {
  const out: string[] = [`${pt.nodes} ${pt.leaves.join(',')} ${pt.tag}`];
  const rec = (n: PtNode): void => {
    out.push(`[${n.used} ${n.tag} ${n.mask} ${n.chunks.length}`);
    for (const ch of n.chunks) {
      if (ch === undefined || typeof ch === 'number') out.push(String(ch));
      else {
        out.push(`(${ch.length}`);
        for (const x of ch) {
          if (x instanceof PtNode) rec(x);
          else out.push(String(x));
        }
        out.push(')');
      }
    }
    out.push(']');
  };
  rec(pt.root);
  return out.join(' ');
}

/** Counts, `used`, chunk lengths, and masks naming only array chunks. */
function checkStructure(pt: PageTable): void {
  let nodes = 0;
  const leaves = new Array<number>(pt.format.levels).fill(0);
  const rec = (n: PtNode, depth: number): void => {
    nodes++;
    let used = 0;
    assert.ok(n.chunks.length <= 16);
    for (let c = 0; c < n.chunks.length; c++) {
      const ch = n.chunks[c];
      if (n.mask & (1 << c)) assert.ok(Array.isArray(ch), `mask bit ${c} on ${typeof ch}`);
      if (ch === undefined) continue;
      if (typeof ch === 'number') {
        used += 32;
        leaves[depth]! += 32;
        continue;
      }
      assert.ok(ch.length <= 32);
      for (const x of ch) {
        if (x === undefined) continue;
        used++;
        if (x instanceof PtNode) rec(x, depth + 1);
        else leaves[depth]!++;
      }
    }
    assert.is(n.used, used);
  };
  rec(pt.root, 0);
  assert.is(pt.nodes, nodes);
  assert.equal([...pt.leaves], leaves);
}

for (const [f, sizes, units] of PT_CASES) {
  test(`${f.name}: in-place epochs agree with persistent operations, roll back exactly, never touch an older epoch's table`, () => {
    const rnd = lcg(f.iovaBits * 131 + 7);
    const g = units[0]!;
    const big = units[2]!;
    const addr = clusteredAddr(rnd, units);
    let ref = emptyTable(f, depthsForSizes(f, sizes));
    let ip = ref;
    const older: { pt: PageTable; runs: string; digest: string }[] = [];
    let epoch = 0;
    let inPlace = 0;
    let rolledBack = 0;
    const log = new Log();
    try {
      for (let step = 0; step < 600; step++) {
        if (step % 40 === 0) {
          // A new epoch: what the last one made is frozen from now on.
          older.push({ pt: ip, runs: show(ip), digest: digest(ip) });
          epoch = newEpoch();
        }
        const a = addr();
        const b = addr();
        const s = a < b ? a : b;
        const e = a < b ? b : a + g;
        let op: (pt: PageTable) => PageTable;
        if (rnd(3) === 0) op = (pt) => unmap(pt, s, e - s).pt;
        else {
          const pa = s + BigInt(rnd(4)) * units[1]! + (e - s <= 4n * units[1]! ? BigInt(rnd(2)) * g : 0n) + big * 4n;
          const prot = 1 + rnd(3);
          // Sometimes as two runs with a gap (mapRuns), so several runs cross a page.
          const cut = s + ((e - s) / g / 2n) * g;
          const two: MapRun[] = [
            { iova: s, pa, length: cut - s },
            { iova: cut + g, pa: pa + (cut - s) + g, length: e - cut - g },
          ];
          const split = rnd(3) === 0 && cut > s && e - cut > g;
          op = split ? (pt) => mapRuns(pt, two, prot) : (pt) => map(pt, s, pa, e - s, prot);
          try {
            op(ref);
          } catch {
            continue; // overlaps what is mapped: a caller bug, never sent in place
          }
        }
        const before = digest(ip);
        const shown = show(ip);
        openEpoch(epoch, log);
        let next: PageTable;
        try {
          next = op(ip);
        } finally {
          closeEpoch();
        }
        if (next === ip && show(next) !== shown) inPlace++;
        if (rnd(5) === 0) {
          // The step fails after its hw writes: the log puts the table back as it was.
          log.rollback();
          rolledBack++;
          assert.is(digest(ip), before, `step ${step}: rollback`);
          checkStructure(ip);
          continue;
        }
        log.ops = [];
        ref = op(ref);
        ip = next;
        assert.is(show(ip), show(ref), `step ${step}`);
        assert.is(ip.nodes, ref.nodes);
        assert.equal([...ip.leaves], [...ref.leaves]);
        if (step % 10 === 0) checkStructure(ip);
      }
    } finally {
      closeEpoch();
    }
    checkStructure(ip);
    for (const o of older) {
      assert.is(show(o.pt), o.runs, 'a table of an earlier epoch changed');
      assert.is(digest(o.pt), o.digest, 'a table of an earlier epoch changed');
    }
    assert.ok(inPlace > 100, `${inPlace} operations wrote their table in place`);
    assert.ok(rolledBack > 30, `${rolledBack} rollbacks`);
  });
}

test('with no epoch open nothing is written in place, even a table made in a closed epoch', () => {
  const epoch = newEpoch();
  const log = new Log();
  openEpoch(epoch, log);
  let pt: PageTable;
  try {
    pt = map(emptyTable(VTD_SL, depthsForSizes(VTD_SL, VTD_SL.pageSizes)), 0x100000n, 0x200000n, 0x4000n, 3);
  } finally {
    closeEpoch();
  }
  const d = digest(pt);
  const next = unmap(map(pt, 0x200000n, 0x300000n, 0x1000n, 3), 0x101000n, 0x1000n).pt;
  assert.is.not(next, pt);
  assert.is(digest(pt), d);
  assert.is(log.ops.length, 0);
  // Another epoch does not write it either.
  openEpoch(newEpoch(), log);
  try {
    assert.is.not(map(pt, 0x200000n, 0x300000n, 0x1000n, 3), pt);
  } finally {
    closeEpoch();
  }
  assert.is(digest(pt), d);
});

test.run();
