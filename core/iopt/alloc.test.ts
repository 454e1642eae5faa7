import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { allocAlignment, allocIova, holesBetween, type AllocParams } from './alloc.js';
import { checkFixed } from './checks.js';
import { IntervalMap } from './interval-map.js';
import { ReservedMap } from './reserved-map.js';
import { coverage, rng, runs } from './testutil.js';
import { U64_LIMIT, U64_MAX, ULONG_MAX_HALF } from './u64.js';

const MiB = 1n << 20n;
const none = IntervalMap.empty<unknown>();
const base = { areas: none, reserved: ReservedMap.empty(), allowed: none, iovaAlignment: 1n };
const alloc = (p: Partial<AllocParams> & { length: bigint; addr: bigint }) => allocIova({ ...base, ...p });
const iovaOf = (r: ReturnType<typeof allocIova>): bigint => {
  if (!r.ok) throw new Error(`${r.errno}: ${r.reason}`);
  return r.iova;
};

test('alignment rule: roundup(length), limited by addr, capped at maxAlignment', () => {
  assert.is(allocAlignment(0x1000n, 0n, 2n * MiB), 0x1000n);
  assert.is(allocAlignment(0x1001n, 0n, 2n * MiB), 0x2000n);
  assert.is(allocAlignment(0x10000n, 0x7f0000001000n, 2n * MiB), 0x1000n);
  assert.is(allocAlignment(64n * MiB, 1n << 30n, 2n * MiB), 2n * MiB);
  assert.is(allocAlignment(64n * MiB, 1n << 30n, 0x1000n), 0x1000n);
  assert.is(allocAlignment(1n, 0n, 2n * MiB), 1n);
  assert.is(allocAlignment(0n, 0n, 2n * MiB), undefined);
  assert.is(allocAlignment(ULONG_MAX_HALF, 0n, 2n * MiB), undefined);
  assert.is(allocAlignment(ULONG_MAX_HALF - 1n, 0n, 2n * MiB), 2n * MiB);
});

test('a fresh IOAS never returns IOVA 0', () => {
  assert.is(iovaOf(alloc({ length: 0x1000n, addr: 0x7f0000001000n })), 0x1000n);
  assert.is(iovaOf(alloc({ length: 1n, addr: 0n })), 0x1000n);
  assert.is(iovaOf(alloc({ length: 2n * MiB, addr: 0x40000000n })), 2n * MiB);
  assert.is(iovaOf(alloc({ length: 64n * MiB, addr: 0x40000000n })), 2n * MiB);
  assert.is(iovaOf(alloc({ length: 64n * MiB, addr: 0x40000000n, maxAlignment: 0x1000n })), 0x1000n);
});

test('EOVERFLOW at ULONG_MAX/2, EINVAL below iova_alignment, ENOSPC when full', () => {
  const big = alloc({ length: ULONG_MAX_HALF, addr: 0n });
  assert.is(big.ok ? '' : big.errno, 'EOVERFLOW');
  assert.is(iovaOf(alloc({ length: ULONG_MAX_HALF - 1n, addr: 0n })), 2n * MiB);
  const zero = alloc({ length: 0n, addr: 0n });
  assert.is(zero.ok ? '' : zero.errno, 'EOVERFLOW');
  const small = alloc({ length: 0x1000n, addr: 0x10000100n, iovaAlignment: 0x1000n });
  assert.is(small.ok ? '' : small.errno, 'EINVAL');
  const full = ReservedMap.empty().add('test:1', 0n, U64_MAX);
  const r = alloc({ length: 1n, addr: 0n, reserved: full });
  assert.is(r.ok ? '' : r.errno, 'ENOSPC');
});

test('page_offset is ORed into the aligned hole start', () => {
  // addr with offset 0x123: alignment 1, offset kept.
  assert.is(iovaOf(alloc({ length: 0x1000n, addr: 0x10000123n })), 0x1123n);
  // offset 0x100 (alignment 256): kept when ALIGN leaves those bits clear ...
  assert.is(iovaOf(alloc({ length: 0x1000n, addr: 0x10000100n })), 0x1100n);
  // ... and the kernel's OR changes the sub-page offset when it does not.
  const areas = IntervalMap.empty<unknown>().insert(0x1000n, 0x11ffn, 0);
  assert.is(iovaOf(alloc({ length: 0x1000n, addr: 0x10000100n, areas })), 0x1300n);
});

test('first fit, ascending, over holes of reserved U areas', () => {
  const areas = IntervalMap.empty<unknown>().insert(0x1000n, 0x1fffn, 'a').insert(0x3000n, 0x3fffn, 'b');
  const reserved = ReservedMap.empty().add('dev:x', 0x4000n, 0x5fffn).add('dev:y', 0x5000n, 0x7fffn);
  const p = { areas, reserved };
  assert.is(iovaOf(alloc({ ...p, length: 0x1000n, addr: 0x1000n })), 0x2000n);
  assert.is(iovaOf(alloc({ ...p, length: 0x2000n, addr: 0x2000n })), 0x8000n);
  // Alignment pushes the candidate beyond a hole that is big enough in bytes.
  const a2 = IntervalMap.empty<unknown>().insert(0x1000n, 0x1fffn, 0).insert(0x5000n, 0x5fffn, 0);
  assert.is(iovaOf(alloc({ areas: a2, length: 0x3000n, addr: 0n })), 0x8000n);
  assert.is(iovaOf(alloc({ areas: a2, length: 0x3000n, addr: 0x1000n })), 0x2000n);
  assert.equal([...holesBetween(reserved, areas, 0n, 0x9fffn)], [
    { start: 0n, last: 0xfffn },
    { start: 0x2000n, last: 0x2fffn },
    { start: 0x8000n, last: 0x9fffn },
  ]);
});

test('allowed ranges: clipped, merged when touching, never IOVA 0 or the last page', () => {
  const low = IntervalMap.empty<unknown>().insert(0n, 0xffffn, 0);
  assert.is(iovaOf(alloc({ allowed: low, length: 0x1000n, addr: 0n })), 0x1000n);
  const lowFull = alloc({ allowed: low, length: 0x10000n, addr: 0n });
  assert.is(lowFull.ok ? '' : lowFull.errno, 'ENOSPC');
  const top = IntervalMap.empty<unknown>().insert(U64_MAX - 0xffffn, U64_MAX, 0);
  assert.is(iovaOf(alloc({ allowed: top, length: 0xf000n, addr: 0n })), U64_MAX - 0xffffn);
  const tooBig = alloc({ allowed: top, length: 0xf001n, addr: 0n });
  assert.is(tooBig.ok ? '' : tooBig.errno, 'ENOSPC');
  const pages = IntervalMap.empty<unknown>().insert(U64_MAX - 0x1fffn, U64_MAX, 0);
  const lastPage = alloc({ allowed: pages, length: 0x1000n, addr: 0n });
  assert.is(iovaOf(lastPage), U64_MAX - 0x1fffn);
  const used = IntervalMap.empty<unknown>().insert(U64_MAX - 0x1fffn, U64_MAX - 0x1000n, 0);
  const r = alloc({ allowed: pages, areas: used, length: 0x1000n, addr: 0n });
  assert.is(r.ok ? '' : r.errno, 'ENOSPC');
  const two = IntervalMap.empty<unknown>().insert(0x10000n, 0x10fffn, 0).insert(0x11000n, 0x11fffn, 0);
  assert.is(iovaOf(alloc({ allowed: two, length: 0x2000n, addr: 0n })), 0x10000n);
  const gap = IntervalMap.empty<unknown>().insert(0x10000n, 0x10fffn, 0).insert(0x11001n, 0x13fffn, 0);
  assert.is(iovaOf(alloc({ allowed: gap, length: 0x2000n, addr: 0n })), 0x12000n);
  const areas = IntervalMap.empty<unknown>().insert(0x100000n, 0x100fffn, 0);
  const win = IntervalMap.empty<unknown>().insert(0x100000n, 0x1fffffn, 0);
  assert.is(iovaOf(alloc({ allowed: win, areas, length: 0x1000n, addr: 0n })), 0x101000n);
});

test('kernel ALIGN() wrap near 2^64 is reproduced and flagged', () => {
  // Allowed span in the top 2 MiB: the span start wraps, search restarts at 0.
  const allowed = IntervalMap.empty<unknown>().insert(U64_LIMIT - 2n * MiB + 0x1000n, U64_MAX, 0);
  const r = alloc({ allowed, length: MiB + 0x1000n, addr: 0n });
  assert.equal(r, { ok: true, iova: 0n, alignment: 2n * MiB, quirk: 'align-wrap' });
  // Hole in the top 2 MiB: candidate wraps to 0, re-checked like a test kernel.
  const resv = ReservedMap.empty().add('test:1', 0n, U64_LIMIT - 2n * MiB);
  const bad = alloc({ reserved: resv, length: MiB + 0x1000n, addr: 0n });
  assert.is(bad.ok ? '' : bad.errno, 'EINVAL');
  assert.match(bad.ok ? '' : bad.reason, /wrapped/);
  const resv2 = ReservedMap.empty().add('test:1', 2n * MiB, U64_LIMIT - 2n * MiB);
  const ok = alloc({ reserved: resv2, length: MiB + 0x1000n, addr: 0n });
  assert.equal(ok, { ok: true, iova: 0n, alignment: 2n * MiB, quirk: 'align-wrap' });
});

test('randomized: matches a brute-force first fit on a small space', () => {
  const N = 700;
  const rand = rng(2024);
  const pageSize = 16n;
  for (let round = 0; round < 300; round++) {
    let areas = IntervalMap.empty<unknown>();
    let reserved = ReservedMap.empty().add('top', BigInt(N), U64_MAX);
    let allowed = IntervalMap.empty<unknown>();
    for (let i = 0; i < rand(20); i++) {
      const s = BigInt(rand(N));
      const l = s + BigInt(rand(40));
      if (!areas.anyIntersects(s, l)) areas = areas.insert(s, l, 0);
    }
    for (let i = 0; i < rand(6); i++) {
      const s = BigInt(rand(N));
      reserved = reserved.add(`o${i % 3}`, s, s + BigInt(rand(60)));
    }
    if (rand(2) === 0) {
      for (let i = 0; i < rand(5); i++) {
        const s = BigInt(rand(N));
        const l = s + BigInt(rand(200));
        if (!allowed.anyIntersects(s, l)) allowed = allowed.insert(s, l, 0);
      }
    }
    const length = BigInt(1 + rand(64));
    const addr = BigInt(rand(4)) === 0n ? 0n : BigInt(rand(1 << 12));
    const maxAlignment = 32n;
    const got = allocIova({ areas, reserved, allowed, length, addr, iovaAlignment: 1n, pageSize, maxAlignment });
    // Oracle: explicit spans and holes from boolean coverage, kernel formula.
    const align = allocAlignment(length, addr, maxAlignment)!;
    const po = addr % pageSize;
    const used = coverage([...areas, ...reserved.entries()], N + 64);
    const allowedCov = allowed.size === 0 ? new Array<boolean>(N + 64).fill(true) : coverage(allowed, N + 64);
    let want: bigint | undefined;
    outer: for (const sp of runs(allowedCov, true)) {
      const s = sp.start < pageSize ? pageSize : sp.start;
      const l = sp.last;
      if (s > l || l - s < length - 1n) continue;
      const from = ((s + align - 1n) & ~(align - 1n)) | po;
      if (from > l || l - from < length - 1n) continue;
      for (const h of runs(used.map((u, i) => u || BigInt(i) < from || BigInt(i) > l), false)) {
        if (h.last - h.start < length - 1n) continue;
        const c = ((h.start + align - 1n) & ~(align - 1n)) | po;
        if (c > h.last || h.last - c < length - 1n) continue;
        want = c;
        break outer;
      }
    }
    assert.is(got.ok ? got.iova : undefined, want, `round ${round}`);
    if (got.ok) assert.ok(checkFixed(areas, reserved, got.iova, length, 1n).ok);
  }
});

test.run();
