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

test.run();
