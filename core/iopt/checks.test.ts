import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { alignmentCheck, buildAllowed, checkFixed, checkReserve, IntervalMap, planUnmap, ReservedMap, U64_MAX } from './index.js';

interface Area {
  readonly pageOffset: bigint;
  readonly busy?: boolean;
}
const A = (pageOffset = 0n, busy = false): Area => ({ pageOffset, busy });

const areas = IntervalMap.empty<Area>()
  .insert(0x10000n, 0x1ffffn, A())
  .insert(0x20000n, 0x2ffffn, A())
  .insert(0x40000n, 0x4ffffn, A());
const reserved = ReservedMap.empty().add('dev:0000:01:00.0', 0xfee00000n, 0xfeefffffn);

test('checkFixed: kernel order alignment, overflow, reserved, overlap', () => {
  const r1 = checkFixed(areas, reserved, 0x1001n, 0x1000n, 0x1000n);
  assert.is(r1.ok ? '' : r1.errno, 'EINVAL');
  const r2 = checkFixed(areas, reserved, U64_MAX - 0xfffn, 0x1001n, 1n);
  assert.is(r2.ok ? '' : r2.errno, 'EOVERFLOW');
  assert.equal(checkFixed(areas, reserved, U64_MAX - 0xfffn, 0x1000n, 1n), { ok: true, last: U64_MAX });
  assert.equal(checkFixed(areas, reserved, U64_MAX, 1n, 1n), { ok: true, last: U64_MAX });
  const r3 = checkFixed(areas, reserved, 0xfee80000n, 0x1000n, 0x1000n);
  assert.is(r3.ok ? '' : r3.errno, 'EINVAL');
  assert.match(r3.ok ? '' : r3.reason, /dev:0000:01:00.0/);
  const r4 = checkFixed(areas, reserved, 0x2f000n, 0x2000n, 0x1000n);
  assert.is(r4.ok ? '' : r4.errno, 'EEXIST');
  assert.match(r4.ok ? '' : r4.reason, /0x20000, 0x2ffff/);
  // Hits both a reserved range and an area: reserved wins (EINVAL).
  const both = reserved.add('test:1', 0x30000n, 0x30fffn);
  const r5 = checkFixed(areas, both, 0x2f000n, 0x3000n, 1n);
  assert.is(r5.ok ? '' : r5.errno, 'EINVAL');
  assert.equal(checkFixed(areas, reserved, 0x30000n, 0x10000n, 0x1000n), { ok: true, last: 0x3ffffn });
});

test('planUnmap: whole areas, gaps allowed, stop at the first crossing area', () => {
  const all = planUnmap(areas, 0n, U64_MAX);
  assert.equal(all.inside.map((e) => e.start), [0x10000n, 0x20000n, 0x40000n]);
  assert.is(all.bytes, 0x30000n);
  assert.is(all.stop, undefined);
  assert.not.ok(all.empty);
  const cut = planUnmap(areas, 0x10000n, 0x47fffn);
  assert.equal(cut.inside.map((e) => e.start), [0x10000n, 0x20000n]);
  assert.is(cut.stop?.errno, 'ENOENT');
  assert.is(cut.stop?.entry.start, 0x40000n);
  const front = planUnmap(areas, 0x18000n, 0x2ffffn);
  assert.equal(front.inside, []);
  assert.is(front.stop?.entry.start, 0x10000n);
  assert.not.ok(front.empty);
  const hole = planUnmap(areas, 0x30000n, 0x3ffffn);
  assert.ok(hole.empty);
  assert.is(hole.bytes, 0n);
  const busyAreas = areas.update(0x20000n, A(0n, true));
  const busy = planUnmap(busyAreas, 0n, U64_MAX, (v) => v.busy === true);
  assert.equal(busy.inside.map((e) => e.start), [0x10000n]);
  assert.is(busy.stop?.errno, 'EBUSY');
  assert.ok(planUnmap(IntervalMap.empty<Area>(), 0n, U64_MAX).empty);
});

test('alignmentCheck: first area with misaligned iova, length or page_offset', () => {
  const po = (a: Area) => a.pageOffset;
  assert.is(alignmentCheck(areas, 0x1000n, po), undefined);
  const odd = areas.insert(0x50000n, 0x50fffn, A(0x800n)).insert(0x60800n, 0x60fffn, A());
  const v = alignmentCheck(odd, 0x1000n, po);
  assert.is(v?.entry.start, 0x50000n);
  assert.is(v?.field, 'pageOffset');
  assert.is(alignmentCheck(odd, 0x800n, po), undefined);
  const len = areas.insert(0x70000n, 0x707ffn, A());
  assert.is(alignmentCheck(len, 0x1000n, po)?.field, 'length');
  const iova = areas.insert(0x70800n, 0x717ffn, A());
  assert.is(alignmentCheck(iova, 0x1000n, po)?.field, 'iova');
  assert.is(alignmentCheck(areas, 0x20000n, po)?.entry.start, 0x10000n);
});

test('checkReserve: EADDRINUSE on areas or allowed, never on reserved', () => {
  const allowed = IntervalMap.empty<null>().insert(0x100000n, 0x1fffffn, null);
  assert.equal(checkReserve(areas, allowed, 0xfee00000n, 0xfeefffffn), { ok: true });
  const a = checkReserve(areas, allowed, 0x1ffffn, 0x1ffffn);
  assert.is(a.ok ? '' : a.errno, 'EADDRINUSE');
  const w = checkReserve(areas, allowed, 0x1ff000n, 0x300000n);
  assert.match(w.ok ? '' : w.reason, /allowed/);
});

test('buildAllowed: EINVAL for start >= last or overlap, EADDRINUSE on reserved', () => {
  const ok = buildAllowed(reserved, [
    { start: 0x200000n, last: 0x2fffffn },
    { start: 0x100000n, last: 0x1fffffn },
  ]);
  assert.ok(ok.ok && ok.allowed.size === 2 && ok.allowed.first()?.start === 0x100000n);
  const single = buildAllowed(reserved, [{ start: 5n, last: 5n }]);
  assert.is(single.ok ? '' : single.errno, 'EINVAL');
  const overlap = buildAllowed(reserved, [
    { start: 0n, last: 0x1000n },
    { start: 0x1000n, last: 0x2000n },
  ]);
  assert.is(overlap.ok ? '' : overlap.errno, 'EINVAL');
  const hit = buildAllowed(reserved, [{ start: 0xfe000000n, last: 0xfee00000n }]);
  assert.is(hit.ok ? '' : hit.errno, 'EADDRINUSE');
  const empty = buildAllowed(reserved, []);
  assert.ok(empty.ok && empty.allowed.size === 0);
});

test.run();
