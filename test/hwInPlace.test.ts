/*
 * hwInPlace.test.ts: the in-place stepper's hw writes (hw/own.ts, opened by
 * core/workingCopy.ts's reused copy through core/hwsync.ts). A reused step that fails
 * after hw wrote its table in place leaves the World's state hash as it was, and a World
 * the stepper handed out before it started a new working copy never changes again.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freezing, inPlaceStep, setFreeze, stateHash } from '../core/index.js';
import { replayLines } from '../cli/replay.js';
import { COPIERS } from '../core/workingCopy.js';
import { makeStep, type HandlerTable } from '../core/step.js';
import { SHALLOW_OPS, TABLE } from '../core/table.js';
import { undoLog } from '../core/undo.js';
import { epochTag, writableTag } from '../hw/own.js';
import { hwMapRuns, hwUnmap } from '../core/hwsync.js';
import type { HwState } from '../hw/index.js';
import type { Input } from '../events/index.js';
import type { World } from '../core/world.js';
import { T, firstMapCopy, runTrace } from './kit.js';

function unfrozen(run: () => void): void {
  const was = freezing();
  setFreeze(false);
  try {
    run();
  } finally {
    setFreeze(was);
  }
}

const MiB = 1024 * 1024;
const setup = [
  T.dev('d0', 1), T.vfio('d0'), T.iommufd('$ifd'), T.cdev('d0', '$dfd'), T.ioas('$ifd', '$A'),
  T.bind('$dfd', '$ifd', '$D'), T.attach('$dfd', '$A', '$H'),
  { op: 'mmap', length: 4 * MiB, expect: { ok: true, addr: '$buf' } },
];
const map = (iova: string, length: number) => ({ op: 'IOMMU_IOAS_MAP', fd: '$ifd', ioas_id: '$A', flags: ['FIXED_IOVA', 'READABLE', 'WRITEABLE'], user_va: '$buf', length, iova });
const unmap = (iova: string, length: number) => ({ op: 'IOMMU_IOAS_UNMAP', fd: '$ifd', ioas_id: '$A', iova, length });

test('in place: a reused step rolled back after hw wrote its own table pages in place', () => {
  unfrozen(() => {
    const r = runTrace('x86-vtd', [...setup, { ...map('0x100000', 8192), expect: { ok: true } }]);
    const { input, own, world: w } = firstMapCopy(r, 0x200000n);
    const d = w as unknown as { hw: HwState };
    const [dom] = [...d.hw.domains.entries()].find(([, , x]) => x.pt !== null && x.pt.leaves.some((n) => n > 0))!;
    const unit = d.hw.units[0]!.name;
    const pt = () => d.hw.domains.get(dom)!.pt!;
    // A reused step maps: its table pages are made in this copy's epoch.
    const second = COPIERS.IOMMU_IOAS_MAP!(w, input, own)!;
    assert.is(second.world, w);
    hwMapRuns(d, dom as number, [{ iova: 0x200000n, pa: 0x7000000n, length: 0x4000n }, { iova: 0x206000n, pa: 0x7100000n, length: 0x1000n }], 3);
    second.seal();
    const before = stateHash(w);
    const table = pt();
    const leaves = [...table.leaves];
    // The next one writes those pages in place, then fails.
    const third = COPIERS.IOMMU_IOAS_MAP!(w, input, own)!;
    hwMapRuns(d, dom as number, [{ iova: 0x204000n, pa: 0x7200000n, length: 0x2000n }], 3);
    assert.is(hwUnmap(d, unit, dom as number, 0x201000n, 0x2000n), 0x2000n);
    hwUnmap(d, unit, dom as number, 0x206000n, 0x1000n);
    assert.is(pt(), table, 'the table was written in place');
    assert.is.not(stateHash(w), before);
    third.rollback();
    assert.is(stateHash(w), before);
    assert.is(pt(), table);
    assert.equal([...pt().leaves], leaves);
  });
});

test('in place: a World handed out before a new working copy never sees a later in-place hw write', () => {
  unfrozen(() => {
    const entries: Record<string, unknown>[] = [...setup];
    // Rounds of MAPs and UNMAPs over the same table pages, each round after an immer
    // step (an IOAS_ALLOC) that hands out a World and makes the next MAP copy afresh.
    for (let round = 0; round < 4; round++) {
      entries.push(T.ioas('$ifd', `$X${round}`));
      // The first MAP after it (the fresh copy) writes elsewhere in the table, so the
      // pages below are still the ones the handed-out World holds.
      entries.push({ ...map(`0x${(0x40000000 + round * 0x200000).toString(16)}`, 4096), expect: { ok: true } });
      const at = (k: number) => `0x${(0x100000 + round * 0x10000 + k * 0x2000).toString(16)}`;
      for (let k = 0; k < 6; k++) entries.push({ ...map(at(k), 4096), expect: { ok: true } });
      for (let k = 0; k < 6; k += 2) entries.push({ ...unmap(at(k), 4096), expect: { ok: true } });
    }
    const lines = [JSON.stringify({ trace: 'iommufd', version: 1, platform: 'x86-vtd' }), ...entries.map((e) => JSON.stringify(e))];
    const ip = inPlaceStep();
    const kept: { world: World; hash: string }[] = [];
    let reused = 0;
    const r = replayLines('rounds', lines, {
      step: (w, input) => {
        const s = ip(w, input);
        if (input.op === 'IOMMU_IOAS_ALLOC') kept.push({ world: s.world, hash: stateHash(s.world) });
        if (input.op === 'IOMMU_IOAS_MAP' && s.world === w) reused++;
        return s;
      },
    });
    assert.is(r.error, null);
    assert.is(r.divergences.length, 0);
    assert.ok(reused > 10, `${reused} MAPs on a reused copy`);
    assert.is(kept.length, 5); // the setup's IOAS and one per round
    for (const k of kept) assert.is(stateHash(k.world), k.hash, 'an older World changed');
  });
});

test('in place: a handler that throws (a model bug) inside a reused step leaves no epoch or undo log open, and the World as it was', () => {
  unfrozen(() => {
    let armed = false;
    let thrownAfter = '';
    const real = TABLE.IOMMU_IOAS_MAP;
    const table = {
      ...TABLE,
      IOMMU_IOAS_MAP: (d, i, env) => {
        const o = real(d, i, env);
        if (armed) {
          thrownAfter = o.kind;
          throw new Error('planted model bug');
        }
        return o;
      },
    } as HandlerTable;
    const ip = makeStep(table, SHALLOW_OPS, COPIERS, true);
    const entries = [...setup, ...[0, 1, 2].map((k) => ({ ...map(`0x${(0x100000 + k * 0x2000).toString(16)}`, 4096), expect: { ok: true } }))];
    const lines = [JSON.stringify({ trace: 'iommufd', version: 1, platform: 'x86-vtd' }), ...entries.map((e) => JSON.stringify(e))];
    const r = replayLines('ok', lines, { step: ip });
    assert.is(r.error, null);
    const w = r.world!;
    const before = stateHash(w);
    armed = true;
    const input = {
      op: 'IOMMU_IOAS_MAP', pid: 1,
      f: { fd: 3, ioas_id: 1, flags: 5, user_va: 0x100000000n, length: 4096n, iova: 0x108000n, __reserved: 0 },
    } as unknown as Input;
    assert.throws(() => ip(w, input), /planted model bug/);
    assert.is(thrownAfter, 'ok', 'the MAP had done its writes');
    assert.is(undoLog(), null, 'undo log closed');
    assert.is(writableTag, -1, 'no hw epoch open');
    assert.is(epochTag, 0);
    assert.is(stateHash(w), before, 'the in-place writes were put back');
  });
});

test.run();
