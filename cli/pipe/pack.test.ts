// unpack(pack(entry)) is the entry exactly, key order included, for every entry of the
// fixtures, generated traces, and hand-made lines that use every field kind, ioctl
// argument, expect form and string path (interned, per batch, past the intern cap),
// and shapes numbered or, past their cap, described with each entry.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isSkippable, isTraceError, parseEntryLine, traceError, type Entry } from '../../events/index.js';
import { fixtureFiles, genLines, readLines } from '../../test/kit.js';
import { Packer, TAG, Unpacker, type Batch } from './pack.js';

/** A canonical text of a value: types and key order show. */
function canon(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  if (v instanceof Uint8Array) return `u8[${v.join(',')}]`;
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (typeof v === 'object' && v !== null) return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${canon(x)}`).join(',')}}`;
  return Object.is(v, -0) ? '-0' : JSON.stringify(v) ?? String(v);
}

/** The entries of lines (header and unparsable lines skipped). */
function entriesOf(lines: readonly string[]): Entry[] {
  const out: Entry[] = [];
  lines.forEach((l, i) => {
    if (isSkippable(l)) return;
    const e = parseEntryLine(l, i + 1);
    if (!isTraceError(e)) out.push(e);
  });
  return out;
}

/** Packs entries in batches of `size` (through the message shape the worker posts) and reads them back. */
function roundTrip(entries: readonly Entry[], size = 100): Entry[] {
  const p = new Packer();
  const u = new Unpacker();
  const out: Entry[] = [];
  const drain = (b: Batch) => {
    u.load(structuredClone(b));
    while (!u.done) {
      assert.is(u.tag(), TAG.entry);
      out.push(u.entry());
    }
  };
  for (const e of entries) {
    p.entry(e);
    if (p.count === size) drain(p.take());
  }
  drain(p.take());
  return out;
}

function assertSame(got: readonly Entry[], want: readonly Entry[]): void {
  assert.is(got.length, want.length);
  for (let i = 0; i < want.length; i++) assert.is(canon(got[i]), canon(want[i]), `line ${want[i]!.line}`);
}

test('every fixture entry and generated entries come back exactly', () => {
  const { good, bad } = fixtureFiles();
  const fixtures = [...good, ...bad].flatMap((p) => entriesOf(readLines(p)));
  assert.ok(fixtures.length > 1000);
  assertSame(roundTrip(fixtures), fixtures);
  for (const w of ['basic', 'vm-churn']) {
    const gen = entriesOf(genLines(w, 3000, 7).slice(1));
    assertSame(roundTrip(gen, 256), gen);
  }
});

const HANDMADE = [
  '{"op":"device_add","flags":["PASID","EMULATED"],"group":"0x7","dev":"0000:00:01.0","iommu":"dmar1","note":"all kinds ünï"}',
  '{"op":"spawn","pid":"$child","caps":"IPC_LOCK","memlock":"18446744073709551615","uid":0}',
  '{"op":"IOMMU_IOAS_ALLOW_IOVAS","fd":3,"ioas_id":"$A","allowed_iovas":[{"start":"0x1000","last":"0xffffffffffffffff"},{"last":5}]}',
  '{"op":"IOMMU_IOAS_MAP","trailing":"0x0001","size":"$sz","fd":-1,"flags":3,"length":4096,"expect":{"errno":"E2BIG","iova":"$I"}}',
  '{"op":"VFIO_DEVICE_BIND_IOMMUFD","argp":null,"argsz":12,"fd":4,"iommufd":3,"expect":{"errno":"EFAULT"}}',
  '{"op":"IOMMU_TEST_CMD","fd":3,"test_op":"DIRTY","dirty_bitmap":"0xff00ab","page_size":4096,"expect":{"ok":true,"out_nr_dirty":"0x0010"}}',
  '{"op":"IOMMU_IOAS_IOVA_RANGES","fd":3,"ioas_id":1,"expect":{"ok":true,"num_iovas":2,"allowed_iovas":[{"start":"0x0","last":"0xfedfffff"}],"out_iova_alignment":-0}}',
  '{"op":"IOMMU_GET_HW_INFO","fd":3,"dev_id":1,"expect":{"ok":true,"data":null,"out_data_type":true,"out_capabilities":{"x":[1,"2"]}}}',
  '{"op":"dma","dev":"d","dir":"read","iova":0,"expect":{"fault":"not_present"}}',
  '{"op":"device_remove","dev":"d","expect":{"pending":true}}',
  '{"op":"IOMMU_MAP_DMA","fd":"$ifd","ioas_id":"$A","user_va":"0xdeadbeef000","length":"0x1000","expect":{"ok":true,"iova":"$I","zzz":1}}',
  '{"op":"IOMMU_IOASID_ALLOC","fd":3,"expect":{"ok":true,"out_ioas_id":"ioas-$A"}}',
  '{"op":"ioctl","fd":3,"cmd":"0x3bff","arg":"0x0"}',
  '{"op":"exit","pid":4294967295}',
];

test('hand-made lines: every field kind, ioctl argument, expect form, alias and note', () => {
  const lines = HANDMADE.map((l) => parseEntryLine(l, 9));
  const entries = lines.filter((e): e is Entry => !isTraceError(e));
  assert.is(entries.length, HANDMADE.length - 1, 'one line is a trace error (zzz is no output)');
  assertSame(roundTrip(entries, 3), entries);
});

test('strings past the intern cap travel with their batch', () => {
  const entries = Array.from({ length: 70_000 }, (_, i) => parseEntryLine(`{"op":"device_remove","dev":"dev-${i}","pid":"$p${i % 7}"}`, i + 2) as Entry);
  assertSame(roundTrip(entries, 4096), entries);
});

test('shapes past the numbering cap travel with their entries', () => {
  // Every order of IOMMU_IOAS_MAP's seven fields: 5040 shapes, past the cap of 4096.
  const fields: [string, string][] = [['fd', '3'], ['flags', '["READABLE"]'], ['ioas_id', '"$A"'], ['__reserved', '0'], ['user_va', '"0x1000"'], ['length', '4096'], ['iova', '"0x2000"']];
  const orders = (rest: [string, string][]): [string, string][][] =>
    rest.length === 0 ? [[]] : rest.flatMap((f, i) => orders([...rest.slice(0, i), ...rest.slice(i + 1)]).map((o) => [f, ...o]));
  const entries = orders(fields).map(
    (o, i) => parseEntryLine(`{"op":"IOMMU_IOAS_MAP",${o.map(([k, v]) => `"${k}":${v}`).join(',')},"expect":{"ok":true,"iova":"0x${i.toString(16)}"}}`, i + 2) as Entry,
  );
  assert.is(entries.length, 5040);
  assertSame(roundTrip(entries, 1000), entries);
});

test('header, trace error, failure and end items', () => {
  const p = new Packer();
  p.header(3, '{"trace":"iommufd"}');
  p.traceError(traceError(5, 'unknown op "x"', 'op'));
  p.traceError(traceError(6, 'malformed JSON: oops'));
  p.failure(7, 'io', 'cannot read f: no such file');
  p.failure(8, 'internal', 'boom');
  p.end(9);
  const u = new Unpacker();
  u.load(p.take());
  assert.is(u.tag(), TAG.header);
  assert.equal(u.header(), { line: 3, text: '{"trace":"iommufd"}' });
  assert.is(u.tag(), TAG.traceError);
  assert.equal(u.traceError(), traceError(5, 'unknown op "x"', 'op'));
  assert.is(u.tag(), TAG.traceError);
  assert.equal(u.traceError(), traceError(6, 'malformed JSON: oops'));
  assert.is(u.tag(), TAG.failure);
  assert.equal(u.failure(), { lineNo: 7, kind: 'io', message: 'cannot read f: no such file' });
  assert.is(u.tag(), TAG.failure);
  assert.equal(u.failure(), { lineNo: 8, kind: 'internal', message: 'boom' });
  assert.is(u.tag(), TAG.end);
  assert.is(u.end(), 9);
  assert.ok(u.done);
});

test.run();
