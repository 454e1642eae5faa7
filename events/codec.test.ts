// resolveEntry and matchExpect keep their meaning on their fast paths: resolved fields
// come in schema order with zeros for the absent ones, fresh arrays per Input, nothing
// left over from the previous entry of the op, the first bad variable in schema order
// named; integer outputs compare with what parseInteger reads from the expect.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isTraceError, matchExpect, parseEntry, resolveEntry, type Bindings, type TraceError } from './codec.js';
import type { Entry, Expect, Input } from './entry.js';
import { parseInteger } from './fields.js';
import { OPS } from './ops.js';
import { ok } from './outcome.js';

function entry(o: Record<string, unknown>): Entry {
  const e = parseEntry(o, 7);
  if (isTraceError(e)) throw new Error(e.message);
  return e;
}

/** A resolved Input, its fields loosely typed (the tests pick ops at run time). */
function input(o: Record<string, unknown>, vars: Bindings = new Map()): Input & { readonly f: Readonly<Record<string, unknown>> } {
  const i = resolveEntry(entry(o), vars);
  if (isTraceError(i)) throw new Error(i.message);
  return i as Input & { readonly f: Readonly<Record<string, unknown>> };
}

test('resolved fields: schema order, zeros for absent fields, given = the fields written', () => {
  const i = input({ op: 'IOMMU_IOAS_MAP', length: 4096, fd: 3, iova: '0x1000', flags: ['READABLE'] });
  assert.equal(Object.keys(i.f), Object.keys(OPS.IOMMU_IOAS_MAP.fields));
  assert.equal(i.f, { fd: 3, flags: 4, ioas_id: 0, __reserved: 0, user_va: 0n, length: 4096n, iova: 0x1000n });
  assert.equal([...i.given].sort(), ['fd', 'flags', 'iova', 'length']);
  assert.is(i.size, 40);
  // Nothing of the previous entry of the op stays behind.
  const j = input({ op: 'IOMMU_IOAS_MAP', fd: 4 });
  assert.equal(j.f, { fd: 4, flags: 0, ioas_id: 0, __reserved: 0, user_va: 0n, length: 0n, iova: 0n });
  assert.equal([...j.given], ['fd']);
  assert.equal([...i.given].sort(), ['fd', 'flags', 'iova', 'length'], 'an earlier Input keeps its given set');
});

test('absent array fields are fresh per Input; given arrays are the written ones', () => {
  const a = input({ op: 'device_add', dev: 'd', group: 1 });
  const b = input({ op: 'device_add', dev: 'e', group: 2 });
  assert.equal(a.f.flags, []);
  assert.ok(a.f.flags !== b.f.flags);
  const c = input({ op: 'device_add', dev: 'f', group: 3, flags: ['PASID'] });
  assert.equal(c.f.flags, ['PASID']);
  assert.equal(input({ op: 'device_add', dev: 'g', group: 4 }).f.flags, []);
});

test('variables: bound values are parsed for their field; the first unbound one in schema order is named', () => {
  const vars: Bindings = new Map<string, bigint | number | string>([['$fd', 3], ['$va', 0x7f0000001000n], ['$p', 9]]);
  const i = input({ op: 'IOMMU_IOAS_MAP', pid: '$p', user_va: '$va', fd: '$fd', length: 8192 }, vars);
  assert.equal([i.pid, i.f.fd, i.f.user_va, i.f.length], [9, 3, 0x7f0000001000n, 8192n]);
  // Written iova first, ioas_id second: the error is about ioas_id, the earlier field of the struct.
  const e = resolveEntry(entry({ op: 'IOMMU_IOAS_MAP', iova: '$nope2', ioas_id: '$nope1', fd: '$fd' }), vars) as TraceError;
  assert.ok(isTraceError(e));
  assert.equal([e.line, e.field, e.message], [7, 'ioas_id', 'variable $nope1 is not bound (bind it in an earlier expect)']);
  // The failed entry left nothing behind either.
  assert.equal(input({ op: 'IOMMU_IOAS_MAP' }).f.fd, 0);
  const big = resolveEntry(entry({ op: 'IOMMU_IOAS_MAP', fd: '$va' }), vars) as TraceError;
  assert.equal([big.field, big.message], ['fd', '$va: 139637976731648 does not fit in s32']);
});

const EXPECTED: unknown[] = [
  0, -0, 1, -1, 4096, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 1.5, NaN, '', '0', '007', '-1', ' 1', '0x', '0x0', '0x1000', '0X1F', '0xfff',
  '0x1fffffffffffff', '0x20000000000000', '0xffffffffffffffff', '999999999999999', '9007199254740993', 'x', null, true, [],
];
const ACTUAL: (number | bigint)[] = [0, 1, -1, 31, 4095, 4096, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 60, 0n, 1n, -1n, 31n, 4096n, 0x1fffffffffffffn, 0x20000000000000n, 2n ** 53n + 1n, 2n ** 64n - 1n];

test('integer outputs match exactly what parseInteger reads from the expect', () => {
  for (const ex of EXPECTED)
    for (const actual of ACTUAL) {
      const n = parseInteger(ex);
      const want = typeof n !== 'string' && n === BigInt(actual);
      const expect: Expect = { kind: 'ok', out: { val64: ex } };
      const m = matchExpect(expect, ok({ val64: actual }), new Map());
      assert.is(m.diverged, !want, `${JSON.stringify(ex)} vs ${String(actual)}`);
    }
});

test('matchExpect binds only when every output matched, and a variable bound twice must agree', () => {
  const vars: Bindings = new Map();
  const expect: Expect = { kind: 'ok', out: { a: { var: '$x' }, b: { var: '$x' }, c: '0x10' } };
  assert.is(matchExpect(expect, ok({ a: 5, b: 6, c: 16n }), vars).detail, 'b: $x is 5, got 6');
  assert.is(vars.size, 0);
  assert.is(matchExpect(expect, ok({ a: 5, b: 5, c: 17n }), vars).detail, 'c: expected "0x10", got 17');
  assert.is(vars.size, 0);
  assert.equal(matchExpect(expect, ok({ a: 5, b: 5, c: 16n }), vars), { diverged: false, detail: '' });
  assert.equal([...vars], [['$x', 5]]);
});

test.run();
