/*
 * mem.test.ts: frames kept alive by pins after their owner unmapped them, and the
 * `orphans` shortcut that lets an unpin skip the search for such frames.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Memory } from './mem.js';

const MiB = 1024n * 1024n;
const owner = { kind: 'proc' as const, pid: 1, va: 0x4000_0000n };

test('unpin without any munmap-while-pinned keeps every frame and never marks orphans', () => {
  const a = Memory.empty().allocFrames(4n * MiB, owner, owner.va);
  const pinned = a.mem.pinFrames(a.pa, MiB);
  assert.is(pinned.pinsAt(a.pa), 1);
  const back = pinned.unpinFrames(a.pa, MiB);
  assert.is(back.pinsAt(a.pa), 0);
  assert.is(back.orphans, false);
  assert.ok(back.ownerOf(a.pa), 'frames still owned: only the pin went');
});

test('frames unmapped while pinned stay until the last unpin, then are freed', () => {
  const a = Memory.empty().allocFrames(4n * MiB, owner, owner.va);
  const pinned = a.mem.pinFrames(a.pa, MiB);
  const unmapped = pinned.unmapFrames(a.pa, 4n * MiB);
  assert.is(unmapped.orphans, true);
  assert.ok(unmapped.ownerOf(a.pa), 'the pinned frame stays alive');
  assert.is(unmapped.ownerOf(a.pa + 2n * MiB), null, 'the unpinned rest is freed at once');
  const freed = unmapped.unpinFrames(a.pa, MiB);
  assert.is(freed.ownerOf(a.pa), null, 'the last unpin frees the orphan');
  assert.ok(unmapped.ownerOf(a.pa), 'the older Memory is unchanged');
});

test('munmap of frames nobody pins marks no orphans', () => {
  const a = Memory.empty().allocFrames(4n * MiB, owner, owner.va);
  const m = a.mem.pinFrames(a.pa, MiB).unmapFrames(a.pa + 2n * MiB, MiB);
  assert.is(m.orphans, false);
});


test('pin index: pins and unpins in any order, read at any point, equal a reference multiset (incremental and rebuilt reads, periodic compaction)', () => {
  // 35,000 changes: past COMPACT_EVERY (16,384) twice; reads after 1, a few (in-place
  // fold) and many (rebuild) changes; old Memories still read their own pins.
  let seed = 7;
  const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
  const a = Memory.empty().allocFrames(1024n * MiB, owner, owner.va);
  let m = a.mem;
  const live: [bigint, bigint][] = [];
  const history: { m: Memory; want: string }[] = [];
  const canon = (runs: [bigint, bigint][]) => runs.map(([s, l]) => `${s}+${l}`).sort().join(',');
  const read = (x: Memory) => canon([...x.pins.entries()].flatMap(([k, ls]) => ls.map((l) => [BigInt(k), BigInt(l)] as [bigint, bigint])));
  for (let i = 0; i < 35_000; i++) {
    if (live.length && rnd(2) === 0) {
      const [pa, len] = live.splice(rnd(live.length), 1)[0]!;
      m = m.unpinFrames(pa, len);
    } else {
      const pa = a.pa + BigInt(rnd(64)) * MiB; // repeats: several runs may start at one PA
      const len = BigInt(1 + rnd(8)) * 4096n;
      m = m.pinFrames(pa, len);
      live.push([pa, len]);
    }
    const r = rnd(100);
    if (r < 1 || i % 997 === 0) assert.is(read(m), canon(live), `after change ${i}`);
    if (r === 99) history.push({ m, want: canon(live) });
  }
  for (const h of history) assert.is(read(h.m), h.want, 'an older Memory reads its own pins');
  assert.is(m.pinsAt(live[0]![0]) >= 1, true);
});

test('pin index: unpinning a run that was never pinned is a model bug, reported at the latest when the index is read', () => {
  const a = Memory.empty().allocFrames(4n * MiB, owner, owner.va);
  const m = a.mem.pinFrames(a.pa, MiB).unpinFrames(a.pa, 2n * MiB);
  assert.throws(() => m.pins, /unpin of unpinned run/);
});

test.run();
