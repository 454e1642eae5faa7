// Invariants: clean traces pass, each invariant names a planted corruption, and the
// incremental check after a step equals a full re-check (kernel-semantics.md §10).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { T, runTrace } from '../test/kit.js';
import type { World } from '../core/index.js';
import { withBugs } from '../core/bugs.js';
import { BUG_NAMES, type BugName } from '../core/bugs.js';
import { setContext, domainMap } from '../hw/index.js';
import { TRANSITION_INVARIANTS, checkAfter, checkAll, domainMirrorsIoas, iotlbFresh, reachableWithinOwner, type Violation } from './invariants.js';
import { Session, applyTemplate, startWorld } from './fuzz.js';
import { choicesArb, nextTemplate } from './arbitraries.js';

const MiB = 1024 * 1024;
const story = [
  T.dev('0000:01:00.0', 1), T.dev('0000:01:00.1', 1), T.vfio('0000:01:00.0'), T.vfio('0000:01:00.1'),
  T.iommufd('$ifd'), T.cdev('0000:01:00.0', '$d0'), T.cdev('0000:01:00.1', '$d1'), T.ioas('$ifd', '$A'),
  T.bind('$d0', '$ifd', '$D0'), T.bind('$d1', '$ifd', '$D1'),
  { op: 'mmap', length: 4 * MiB, expect: { ok: true, addr: '$buf' } },
  { op: 'IOMMU_IOAS_MAP', fd: '$ifd', ioas_id: '$A', flags: ['FIXED_IOVA', 'READABLE', 'WRITEABLE'], user_va: '$buf', length: 2 * MiB, iova: '0x100000', expect: { ok: true } },
  T.attach('$d0', '$A', '$H'), T.attach('$d1', '$A', '$H'),
  { op: 'dma', dev: '0000:01:00.1', iova: '0x100010', length: 8, dir: 'write', expect: { ok: true, owner: 'pid:1' } },
  { op: 'device_add', dev: '0000:02:00.0', group: 2, expect: { ok: true } },
  { op: 'driver_probe', dev: '0000:02:00.0', driver: 'nvme', expect: { ok: true } },
  { op: 'dma_map', dev: '0000:02:00.0', length: 8192, expect: { ok: true } },
];
const hwptOf = (w: World) => Object.values(w.ctxs[1]!.objects).find((o) => o.type === 'hwpt_paging') as { id: number; domain: number };
const names = (vs: Violation[]) => [...new Set(vs.map((v) => v.invariant))].sort();

function built(): World {
  const r = runTrace('x86-vtd', story);
  assert.equal(r.divergences, []);
  return r.world;
}

test('a clean passthrough story breaks nothing, after every step and as a whole', () => {
  const w = built();
  assert.equal(checkAll(w), []);
  const h = hwptOf(w).domain;
  assert.equal(domainMirrorsIoas(w, 1, hwptOf(w).id), []);
  assert.equal(reachableWithinOwner(w, h, 1), []);
  assert.equal(iotlbFresh(w), []);
});

test('each invariant names a planted corruption', () => {
  const w = built();
  const g1 = w.groups[1]!;
  // (a) a user-owned group back in its default domain (and the hardware agreeing).
  let hw = w.hw;
  for (const dev of g1.devices) hw = setContext(hw, 'dmar0', dev, { kind: 'domain', domain: g1.defaultDomain });
  const a = { ...w, hw, groups: { ...w.groups, 1: { ...g1, domain: { kind: 'default' } as const } } };
  assert.ok(names(checkAll(a)).includes('owner-domain'));
  // (b) a DMA-API driver in the user-owned group.
  const b = { ...w, devices: { ...w.devices, '0000:01:00.1': { ...w.devices['0000:01:00.1']!, driver: 'nvme' } } };
  assert.ok(names(checkAll(b)).includes('no-kernel-driver-in-user-group'));
  // (c) one device's context left in the default domain.
  const c = { ...w, hw: setContext(w.hw, 'dmar0', '0000:01:00.1', { kind: 'domain', domain: g1.defaultDomain }) };
  assert.ok(names(checkAll(c)).includes('hw-context-matches-group'));
  // (d) (e) (g) the user domain maps a kernel buffer too.
  const h = hwptOf(w).domain;
  const kpa = [...w.mem.frames.entries()].map(([, f]) => f).find((f) => f.owner.kind === 'kernel')!.pa;
  const d = { ...w, hw: domainMap(w.hw, h, 0x4000000n, kpa, 0x1000n, 3) };
  assert.equal(names(checkAll(d)), ['domain-mirrors-ioas', 'reachability']);
  // (f) a stale IOTLB entry: unmap with the flush switched off.
  const f = runTrace('x86-vtd', [...story, { op: 'IOMMU_IOAS_UNMAP', fd: '$ifd', ioas_id: '$A', iova: 0, length: '0xffffffffffffffff', expect: { ok: true } }], withBugs(startWorld('x86-vtd'), ['unmap-no-flush']));
  assert.equal(names(checkAll(f.world)), ['iotlb-fresh']);
  // (h) a charge nobody pinned.
  const hh = { ...w, users: { 1000: { lockedPages: 1 } } };
  assert.equal(names(checkAll(hh)), ['accounting-balance']);
  // (i) an HWPT that its IOAS does not list.
  const io = w.ctxs[1]!.objects[1] as Extract<World['ctxs'][number]['objects'][number], { type: 'ioas' }>;
  const i = { ...w, ctxs: { 1: { ...w.ctxs[1]!, objects: { ...w.ctxs[1]!.objects, 1: { ...io, data: { ...io.data, hwpts: [] } } } } } };
  assert.ok(names(checkAll(i)).includes('object-refs'));
});

/**
 * Runs generated traces and compares, after every step, the incremental check with
 * full checks: from a clean World they must be equal; from a World already broken,
 * every violation that is new in the full check must be in the incremental one, and
 * the incremental one reports nothing the full check does not. Returns how many
 * steps had violations to compare.
 */
function incrementalEqualsFull(bugs: BugName[], runs: number, seed: number): number {
  let compared = 0;
  const start = startWorld('x86-vtd', bugs);
  const key = (v: Violation) => `${v.invariant}: ${v.message}`;
  fc.assert(
    fc.property(choicesArb(60), (choices) => {
      const s = new Session(start);
      let before = checkAll(start).map(key);
      for (const c of choices) {
        const prev = s.world;
        const t = nextTemplate(s, c);
        const r = applyTemplate(s, t, false);
        if (r.violation) return true; // the model threw: reported by the fuzzer, not compared here
        const full = checkAll(s.world).map(key).sort();
        const inc = [...new Set(stateAfter(prev, s.world).filter((v) => !TRANSITION_INVARIANTS.includes(v.invariant)).map(key))].sort();
        const at = `after ${JSON.stringify(t.raw)}`;
        if (before.length === 0) assert.equal(inc, full, at);
        else {
          const fresh = full.filter((x) => !before.includes(x));
          assert.equal(fresh.filter((x) => !inc.includes(x)), [], `${at}: missed by the incremental check`);
          assert.equal(inc.filter((x) => !full.includes(x)), [], `${at}: reported only by the incremental check`);
        }
        if (full.length) compared++;
        before = full;
      }
      return true;
    }),
    { seed, numRuns: runs },
  );
  return compared;
}

// checkAfter reads the Input only for transition properties, which are filtered out here.
function stateAfter(prev: World, next: World): Violation[] {
  return checkAfter(prev, next, { op: 'close', pid: 1, f: { fd: -1 }, given: new Set(), size: 0, trailing: null, argpNull: false });
}

test('incremental checkAfter equals a full re-check after every step (no bugs)', () => {
  incrementalEqualsFull([], 40, 11);
});

test('incremental checkAfter equals a full re-check with each bug switched on', () => {
  // Bugs make violations appear, so the comparison also covers steps where something broke.
  assert.ok(incrementalEqualsFull([...BUG_NAMES], 150, 99) > 100);
  for (const [k, b] of BUG_NAMES.entries()) incrementalEqualsFull([b], 60, 100 + k);
});

test.run();
