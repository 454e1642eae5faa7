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

test('pin index: an older Memory changed again forks its own history; the newer one keeps its pins (a World put back after a failed step)', () => {
  const a = Memory.empty().allocFrames(64n * MiB, owner, owner.va);
  const runs = (x: Memory) => [...x.pins.entries()].map(([k, ls]) => `${k - Number(a.pa)}:${ls.join('/')}`).join(',');
  const base = a.mem.pinFrames(a.pa, MiB).pinFrames(a.pa + 8n * MiB, 2n * MiB);
  const newer = base.pinFrames(a.pa + 16n * MiB, MiB).unpinFrames(a.pa, MiB);
  assert.is(runs(newer), `${8 * 1048576}:2097152,${16 * 1048576}:1048576`);
  // `base` sees fewer changes than its log holds now: it must not see `newer`'s.
  const other = base.unpinFrames(a.pa + 8n * MiB, 2n * MiB).pinFrames(a.pa + 32n * MiB, 4096n);
  assert.is(runs(other), `0:1048576,${32 * 1048576}:4096`);
  assert.is(runs(newer), `${8 * 1048576}:2097152,${16 * 1048576}:1048576`);
  assert.is(runs(base), `0:1048576,${8 * 1048576}:2097152`);
  // Reads of two Memories of one log, in turn, are each built once.
  const t = base.pins;
  assert.is(newer.pins, newer.pins);
  assert.is(base.pins, t);
  // And the newer history goes on in place.
  assert.is(runs(newer.pinFrames(a.pa, 4096n)), `0:4096,${8 * 1048576}:2097152,${16 * 1048576}:1048576`);
});

test('pin index: pinRuns and unpinRuns change the index as one pinFrames or unpinFrames per run', () => {
  const a = Memory.empty().allocFrames(64n * MiB, owner, owner.va);
  const canon = (x: Memory) => JSON.stringify([...x.pins.entries()]);
  const ext = [{ pa: a.pa, length: MiB }, { pa: a.pa + 4n * MiB, length: 8192n }, { pa: a.pa, length: 4096n }];
  const one = ext.reduce((m, e) => m.pinFrames(e.pa, e.length), a.mem);
  const many = a.mem.pinRuns([{ first: 0, last: 255, pa: a.pa }, { first: 300, last: 301, pa: a.pa + 4n * MiB }, { first: 7, last: 7, pa: a.pa }], 4096n);
  assert.is(a.mem.pinRuns([], 4096n), a.mem);
  assert.is(canon(many), canon(one));
  assert.is(many.maxPin, Number(MiB));
  const runs = [{ first: 0, last: 255, pa: a.pa }, { first: 300, last: 301, pa: a.pa + 4n * MiB }];
  assert.is(canon(many.unpinRuns(runs, 4096n)), canon(a.mem.pinFrames(a.pa, 4096n)));
  assert.is(many.unpinRuns([], 4096n), many);
});

test('pin index: unpinning a run that was never pinned is a model bug, reported at the latest when the index is read', () => {
  const a = Memory.empty().allocFrames(4n * MiB, owner, owner.va);
  const m = a.mem.pinFrames(a.pa, MiB).unpinFrames(a.pa, 2n * MiB);
  assert.throws(() => m.pins, /unpin of unpinned run/);
});

test.run();
