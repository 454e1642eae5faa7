// Units, domains and contexts: sequential domain ids, page-size options, validation of
// caller bugs, persistence of whole HwStates, and life inside an immer-managed tree.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { castDraft, produce } from 'immer';
import {
  EMPTY_HW,
  HwState,
  READ,
  addUnit,
  allocDomain,
  contextOf,
  dma,
  domainMap,
  domainRuns,
  domainStats,
  freeDomain,
  getDomain,
  setContext,
} from './index.js';

test('domain ids are global and sequential; page-size options', () => {
  let hw = addUnit(EMPTY_HW, 'smmu0', 'arm-lpae-s2');
  hw = addUnit(hw, 'dmar0', 'vtd-sl', { iotlbCapacity: 8 });
  assert.equal(hw.units.map((u) => u.name), ['dmar0', 'smmu0']);
  assert.throws(() => addUnit(hw, 'dmar0', 'mock'), /exists/);
  const a = allocDomain(hw, 'dmar0', { hugePages: true });
  const b = allocDomain(a.hw, 'smmu0', { hugePages: false });
  const c = allocDomain(b.hw, 'smmu0', { hugePages: true, pageSizes: 0x1000n | 0x40000000n });
  assert.equal([a.domain, b.domain, c.domain], [1, 2, 3]);
  hw = c.hw;
  assert.is(getDomain(hw, 1).pageSizes, 0x40201000n);
  assert.is(getDomain(hw, 2).pageSizes, 0x1000n);
  assert.is(getDomain(hw, 3).pageSizes, 0x40001000n);
  assert.throws(() => allocDomain(hw, 'smmu0', { hugePages: true, pageSizes: 0x200000n }), /granule/);
  assert.throws(() => allocDomain(hw, 'smmu0', { hugePages: true, pageSizes: 0x10000n | 0x1000n }), /not supported/);
  assert.throws(() => allocDomain(hw, 'nope', { hugePages: true }), /no IOMMU unit/);
  assert.equal(domainStats(hw, 2), { nodes: 1, leaves: [{ pageSize: 0x1000n, count: 0 }, { pageSize: 0x200000n, count: 0 }, { pageSize: 0x40000000n, count: 0 }] });
});

test('contexts: validation, removal, persistence of old states', () => {
  let hw = addUnit(addUnit(EMPTY_HW, 'u0', 'vtd-sl'), 'u1', 'vtd-sl');
  const a = allocDomain(hw, 'u0', { hugePages: true });
  hw = a.hw;
  assert.throws(() => setContext(hw, 'u1', 'dev', { kind: 'domain', domain: a.domain }), /belongs/);
  assert.throws(() => setContext(hw, 'u0', 'dev', { kind: 'domain', domain: 99 }), /no domain/);
  const h1 = setContext(hw, 'u0', 'dev', { kind: 'domain', domain: a.domain });
  const h2 = setContext(h1, 'u0', 'dev', null);
  assert.equal(contextOf(h1, 'u0', 'dev'), { kind: 'domain', domain: a.domain });
  assert.is(contextOf(h2, 'u0', 'dev'), undefined);
  assert.is(contextOf(hw, 'u0', 'dev'), undefined);
  assert.is(setContext(h2, 'u0', 'dev', null), h2);
  const h3 = freeDomain(h2, a.domain);
  assert.throws(() => getDomain(h3, a.domain), /no domain/);
  assert.ok(getDomain(h2, a.domain));
});

test('HwState lives inside an immer tree untouched (class instances are not drafted)', () => {
  let hw: HwState = addUnit(EMPTY_HW, 'u0', 'mock');
  const a = allocDomain(hw, 'u0', { hugePages: true });
  hw = setContext(a.hw, 'u0', 'dev', { kind: 'domain', domain: a.domain });
  const s0 = { history: [] as HwState[], hw };
  const s1 = produce(s0, (draft) => {
    draft.history.push(draft.hw);
    // At run time draft.hw IS the HwState (classes are not drafted); castDraft only
    // satisfies the Draft type of the slot it is stored into.
    draft.hw = castDraft(domainMap(draft.hw, a.domain, 0x1000000n, 0x800n, 0x800n, READ));
  });
  const s2 = produce(s1, (draft) => {
    draft.hw = castDraft(dma(draft.hw, 'u0', 'dev', 0x1000000n, 4n, 'read').hw);
  });
  assert.is(s1.history[0], hw);
  assert.equal(domainRuns(s0.hw, a.domain), []);
  assert.equal(domainRuns(s2.hw, a.domain), [{ iova: 0x1000000n, pa: 0x800n, length: 0x800n, prot: READ }]);
  assert.ok(s2.hw instanceof HwState);
});

test.run();
