/*
 * inPlace.test.ts: the in-place step (core's inPlaceStep, what `replay` uses) against
 * the persistent step. Both step their own World through the same trace: every outcome
 * must be the same, and so must the state hash after every failed step (a failure on
 * a reused working copy must put back everything the handler wrote) and at the end.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freezing, inPlaceStep, setFreeze, stateHash, step } from '../core/index.js';
import { replayLines } from '../cli/replay.js';
import { COPIERS } from '../core/workingCopy.js';
import { ownsPages, type Pages, type PagesTable } from '../core/pages.js';
import { ABSENT, undoLog } from '../core/undo.js';
import type { World } from '../core/world.js';
import { T, firstMapCopy, fixtureFiles, genLines, readLines, runTrace } from './kit.js';

interface Tally {
  /** Steps that returned the World they were given, written in place. */
  inPlace: number;
  /** Failed MAP/UNMAP steps that came right after an in-place step (so on a reused copy). */
  failedReused: number;
}

/**
 * Replays the trace with the in-place step alone first (so that it keeps its pages table
 * owned from step to step, as in a real replay), recording each outcome and the state
 * hash after every failure and every 64th entry; then with the persistent step, which
 * must agree at each of them.
 */
function compare(name: string, lines: readonly string[], tally: Tally): void {
  const ip = inPlaceStep();
  const seen: { outcome: unknown; hash?: string }[] = [];
  let lastInPlace = false;
  const a = replayLines(name, lines, {
    step: (w, input) => {
      const r = ip(w, input);
      const n = seen.length + 1;
      seen.push({ outcome: r.outcome, hash: r.outcome.kind === 'errno' || n % 64 === 0 ? stateHash(r.world) : undefined });
      if (r.outcome.kind === 'errno' && lastInPlace && (input.op === 'IOMMU_IOAS_MAP' || input.op === 'IOMMU_IOAS_UNMAP')) tally.failedReused++;
      lastInPlace = r.world === w && r.outcome.kind !== 'errno';
      if (lastInPlace) tally.inPlace++;
      return r;
    },
  });
  assert.is(a.error, null, name);
  let n = 0;
  const p = replayLines(name, lines, {
    step: (w, input) => {
      const r = step(w, input);
      const s = seen[n++]!;
      const where = `${name} entry ${n} ${input.op}`;
      assert.equal(s.outcome, r.outcome, where);
      if (s.hash !== undefined) assert.is(s.hash, stateHash(r.world), where);
      return r;
    },
  });
  assert.is(n, seen.length, `${name}: entries stepped`);
  assert.is(a.stateHash, p.stateHash, `${name}: final state`);
}

/** The in-place path is off while Worlds are frozen (tests freeze by default). */
function unfrozen(run: () => void): void {
  const was = freezing();
  setFreeze(false);
  try {
    run();
  } finally {
    setFreeze(was);
  }
}

/** compare() on an x86-vtd trace of `entries`, which the in-place replay must also match; its final World. */
function compareEntries(name: string, entries: readonly Record<string, unknown>[]): { world: World; tally: Tally } {
  const lines = [JSON.stringify({ trace: 'iommufd', version: 1, platform: 'x86-vtd' }), ...entries.map((e) => JSON.stringify(e))];
  const tally = { inPlace: 0, failedReused: 0 };
  let world: World | null = null;
  unfrozen(() => {
    compare(name, lines, tally);
    const r = replayLines(name, lines, { inPlace: true });
    assert.is(r.divergences.length, 0);
    world = r.world;
  });
  return { world: world!, tally };
}

test('in place: same outcomes and states as the persistent step, every good fixture', () => {
  const tally = { inPlace: 0, failedReused: 0 };
  unfrozen(() => {
    for (const p of fixtureFiles().good) compare(p, readLines(p), tally);
  });
  assert.ok(tally.inPlace > 100, `${tally.inPlace} steps wrote in place`);
  assert.ok(tally.failedReused > 5, `${tally.failedReused} failed MAP/UNMAP on a reused copy`);
});

test('in place: same outcomes and states as the persistent step, generated traces', () => {
  const tally = { inPlace: 0, failedReused: 0 };
  unfrozen(() => {
    for (const seed of [1, 2, 3]) for (const wl of ['basic', 'vm-churn']) compare(`${wl}/${seed}`, genLines(wl, 1500, seed), tally);
  });
  assert.ok(tally.inPlace > 2000, `${tally.inPlace} steps wrote in place`);
});

const MiB = 1024 * 1024;
/** MAP and UNMAP on IOAS $A of iommufd $ifd (the traces below), from buffer $buf unless told. */
const map = (iova: string, length: number, user_va = '$buf') => ({ op: 'IOMMU_IOAS_MAP', fd: '$ifd', ioas_id: '$A', flags: ['FIXED_IOVA', 'READABLE', 'WRITEABLE'], user_va, length, iova });
const unmap = (iova: string, length: number) => ({ op: 'IOMMU_IOAS_UNMAP', fd: '$ifd', ioas_id: '$A', iova, length });
/** Device d0 bound to iommufd $ifd (and attached to its IOAS $A when `attach`), and a 4 MiB buffer $buf. */
const setup = (attach: boolean) => [
  T.dev('d0', 1), T.vfio('d0'), T.iommufd('$ifd'), T.cdev('d0', '$dfd'), T.ioas('$ifd', '$A'),
  T.bind('$dfd', '$ifd', '$D'), ...(attach ? [T.attach('$dfd', '$A', '$H')] : []),
  { op: 'mmap', length: 4 * MiB, expect: { ok: true, addr: '$buf' } },
];

test('in place: a MAP refused over RLIMIT_MEMLOCK after earlier MAPs leaves no area, pin or charge behind', () => {
  const entries = [
    ...setup(true),
    { op: 'setrlimit', memlock: 1 * MiB, expect: { ok: true } },
    { ...map('0x100000', 256 * 1024), expect: { ok: true } },
    { ...map('0x200000', 256 * 1024), expect: { ok: true } },
    // Inserts the area, pins, then the charge is refused: all of it must be undone.
    { ...map('0x300000', 1 * MiB), expect: { errno: 'ENOMEM' } },
    { op: 'dma', dev: 'd0', iova: '0x300000', length: 8, dir: 'read', expect: { fault: 'not_present' } },
    { ...map('0x300000', 256 * 1024), expect: { ok: true } },
  ];
  const { world, tally } = compareEntries('rlimit', entries);
  assert.is(world.users[1000]!.lockedPages, 192);
  assert.is(tally.failedReused, 1);
});

test('in place: a MAP refused EFAULT and an UNMAP of shared pages after earlier MAPs agree with the persistent step', () => {
  const entries = [
    ...setup(true),
    { ...map('0x100000', 1 * MiB), expect: { ok: true } },
    { ...map('0x200000', 256 * 1024), expect: { ok: true } },
    // No memory there: refused after the area went in and a pages object was made.
    { ...map('0x300000', 256 * 1024, '0x5000000000'), expect: { errno: 'EFAULT' } },
    { op: 'dma', dev: 'd0', iova: '0x300000', length: 8, dir: 'read', expect: { fault: 'not_present' } },
    { op: 'IOMMU_IOAS_COPY', fd: '$ifd', flags: ['FIXED_IOVA', 'READABLE'], dst_ioas_id: '$A', src_ioas_id: '$A', length: 64 * 1024, src_iova: '0x110000', dst_iova: '0x400000', expect: { ok: true } },
    { ...unmap('0x100000', 1 * MiB), expect: { ok: true } },
    { ...unmap('0x400000', 64 * 1024), expect: { ok: true } },
    { ...unmap('0x300000', 4096), expect: { errno: 'ENOENT' } },
    { ...map('0x300000', 256 * 1024), expect: { ok: true } },
  ];
  const { world, tally } = compareEntries('efault', entries);
  assert.is(world.users[1000]!.lockedPages, 128);
  assert.is(tally.failedReused, 2);
});

test('in place: an attach refused over RLIMIT_MEMLOCK after pinning some areas leaves the in-place pages table as it was', () => {
  const entries = [
    ...setup(false),
    { op: 'setrlimit', memlock: 1 * MiB, expect: { ok: true } },
    // No domain yet: these MAPs (in place, the second on the reused copy) pin nothing.
    { ...map('0x100000', 512 * 1024), expect: { ok: true } },
    { ...map('0x200000', 1 * MiB), expect: { ok: true } },
    // The attach (an immer step) pins the first area, then the second is refused.
    { op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', fd: '$dfd', pt_id: '$A', expect: { errno: 'ENOMEM' } },
    { ...map('0x400000', 256 * 1024), expect: { ok: true } },
  ];
  const lines = [JSON.stringify({ trace: 'iommufd', version: 1, platform: 'x86-vtd' }), ...entries.map((e) => JSON.stringify(e))];
  unfrozen(() => compare('attach-rlimit', lines, { inPlace: 0, failedReused: 0 }));
});

test('in place: rollback of a reused copy puts back every field the MAP/UNMAP path may write', () => {
  unfrozen(() => {
    const r = runTrace('x86-vtd', [
      ...setup(true),
      { op: 'IOMMU_IOAS_MAP', fd: '$ifd', ioas_id: '$A', flags: ['FIXED_IOVA', 'READABLE'], user_va: '$buf', length: 8192, iova: '0x100000', expect: { ok: true } },
    ]);
    const { input, own, world: w } = firstMapCopy(r, 0x200000n);
    const before = stateHash(w);
    const copy = COPIERS.IOMMU_IOAS_MAP!(w, input, own)!;
    assert.is(copy.world, w, 'the second op reuses the copy');
    // Everything the working-copy contract lets a MAP or UNMAP handler write: fields
    // replaced whole, and writes below them made the way core/pages.ts makes them
    // (through the undo log), the pages table written in place included.
    const m = w as unknown as {
      mem: unknown; hw: unknown; users: Record<number, { lockedPages: number }>; procs: Record<number, { lockedPages: number; pinnedPages: number }>;
      ctxs: Record<number, { nextPages: number; pages: PagesTable; objects: Record<number, { data: { areas: unknown } }> }>;
    };
    const ctx = Object.values(m.ctxs)[0]!;
    const log = undoLog();
    assert.ok(log, 'a reused step writes under an undo log');
    const pages = ctx.pages;
    assert.ok(ownsPages(pages), 'the own copy keeps its pages table owned');
    const [id, p] = pages.entries().next().value as [number, Pages];
    log!.record(pages, id, p);
    pages.set(id, { ...p, areas: p.areas + 5 });
    log!.record(pages, 999, ABSENT);
    pages.set(999, p);
    const write = <T extends object>(o: T, k: keyof T & string, v: unknown) => {
      log!.record(o, k, k in o ? o[k] : ABSENT);
      (o as Record<string, unknown>)[k] = v;
    };
    write(m.procs[1]!, 'lockedPages', m.procs[1]!.lockedPages + 3);
    write(m.procs[1]!, 'pinnedPages', m.procs[1]!.pinnedPages + 3);
    write(m.users[1000]!, 'lockedPages', m.users[1000]!.lockedPages + 3);
    write(m.users, '4242' as never, { lockedPages: 1 });
    m.mem = null;
    m.hw = null;
    ctx.nextPages += 7;
    ctx.pages = null as never;
    ctx.objects[Number(r.vars.get('$A'))]!.data.areas = null;
    copy.rollback();
    assert.is(undoLog(), null, 'the log is closed with the step');
    assert.is(stateHash(w), before);
    assert.not.ok(4242 in m.users);
    assert.is(ctx.pages.get(999), undefined);
  });
});

test.run();
