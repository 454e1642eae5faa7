// The fast path of fields.ts agrees with parseFieldValue: for every kind of every op
// and a spread of JSON values (edge widths, signs, spaces, prefixes, names, wrong
// types), fastParser either declines (undefined) or returns the same value; and
// shortPlainInteger (used to match outputs) reads exactly what parseInteger reads.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fastParser, parseFieldValue, parseInteger, shortPlainInteger, type FieldKind } from './fields.js';
import { OPS } from './ops.js';

const INTS = [
  0, -0, 1, -1, 7, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 32 - 1, 2 ** 32,
  2 ** 53 - 1, 2 ** 53, -(2 ** 53 - 1), 1.5, NaN, Infinity, 1e300,
];
const STRINGS = [
  '', '0', '00', '007', '-0', '-1', '+1', ' 1', '1 ', '0x', '0x0', '0X1F', '0xg', '00x1', '-0x1', '0x-1', '1e3', '1.0', 'x',
  '0xff', '0x100', '0xffff', '0x10000', '0x7fffffff', '0x80000000', '0xffffffff', '0x100000000', '0x1fffffffffffff',
  '0x20000000000000', '0xffffffffffff', '0x1000000000000', '0xfffffffffffff', '0x10000000000000', '0xffffffffffffffff',
  '0x10000000000000000', '0x0000000000000000001', '18446744073709551615', '18446744073709551616', '9999999999999999999',
  '999999999999999', '9007199254740991', '9007199254740992', '4294967295', '4294967296', '2147483647', '2147483648',
  'toString', 'constructor', '__proto__', 'hasOwnProperty',
];
const OTHERS: unknown[] = [null, true, false, [], {}, ['x'], [1], ['toString'], ['constructor'], 10n];

function kinds(): FieldKind[] {
  const out: FieldKind[] = [];
  for (const op of Object.values(OPS)) for (const f of Object.values(op.fields)) out.push(f.kind);
  out.push({ k: 'int', bits: 8, signed: false }, { k: 'int', bits: 16, signed: false }, { k: 'int', bits: 64, signed: true });
  return out;
}

function same(a: unknown, b: unknown): boolean {
  return typeof a === 'object' ? JSON.stringify(a) === JSON.stringify(b) : Object.is(a, b);
}

test('fastParser agrees with parseFieldValue wherever it answers', () => {
  let answered = 0;
  for (const kind of kinds()) {
    const fast = fastParser(kind);
    const names = 'names' in kind ? Object.keys(kind.names) : 'values' in kind && kind.values ? [...kind.values] : [];
    const values: unknown[] = [...INTS, ...STRINGS, ...OTHERS, ...names, names, names.slice(0, 1), [...names, 'NOPE']];
    for (const v of values) {
      const x = fast(v);
      if (x === undefined) continue;
      answered++;
      const r = parseFieldValue(kind, v);
      assert.ok(r.ok, `${JSON.stringify(kind)} ${String(v)}: fast ${String(x)}, general ${r.ok ? '' : r.message}`);
      if (r.ok) assert.ok(same(x, r.value), `${JSON.stringify(kind)} ${String(v)}: fast ${String(x)}, general ${String(r.value)}`);
    }
  }
  assert.ok(answered > 500, `the fast path answered only ${answered} times`);
});

test('shortPlainInteger answers every plain string of at most 15 characters, as parseInteger', () => {
  const more = ['0x1fffffffffff', '0xFfFfFfFfFfFfF', '0x0000000000001', '123456789012345', '1234567890123456', '0x12345678901234', ' ', '0x ', '٣'];
  for (const s of [...STRINGS, ...more]) {
    const x = shortPlainInteger(s);
    const plain = s.length <= 15 && /^(0x[0-9a-f]+|[0-9]+)$/i.test(s);
    assert.is(x !== undefined, plain, `answers ${JSON.stringify(s)}`);
    if (x !== undefined) assert.is(BigInt(x), parseInteger(s), `value of ${JSON.stringify(s)}`);
  }
});

test.run();
