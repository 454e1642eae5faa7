import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { produce } from 'immer';
import { IntervalMap, ReservedMap } from './index.js';

interface Ioas {
  readonly areas: IntervalMap<{ readonly pageOffset: bigint }>;
  readonly reserved: ReservedMap;
}

test('maps live inside immer state as opaque values; old states stay valid', () => {
  const s0: { ioas: Ioas } = {
    ioas: { areas: IntervalMap.empty(), reserved: ReservedMap.empty() },
  };
  const s1 = produce(s0, (d) => {
    d.ioas.areas = d.ioas.areas.insert(0x1000n, 0x1fffn, { pageOffset: 0n });
    d.ioas.reserved = d.ioas.reserved.add('domain:1', 1n << 48n, 0xffff_ffff_ffff_ffffn);
  });
  const s2 = produce(s1, (d) => {
    d.ioas.areas = d.ioas.areas.remove(0x1000n);
    d.ioas.reserved = d.ioas.reserved.removeOwner('domain:1');
  });
  assert.is(s0.ioas.areas.size, 0);
  assert.is(s1.ioas.areas.size, 1);
  assert.is(s1.ioas.reserved.holes().length, 1);
  assert.is(s1.ioas.reserved.holes()[0]?.last, (1n << 48n) - 1n);
  assert.is(s2.ioas.areas.size, 0);
  assert.is(s2.ioas.reserved.size, 0);
  assert.ok(s1.ioas.areas instanceof IntervalMap);
  // A later update still works on a map that passed through immer.
  assert.is(s1.ioas.areas.insert(0x2000n, 0x2fffn, { pageOffset: 0n }).size, 2);
});

test.run();
