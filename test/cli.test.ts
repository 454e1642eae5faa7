/*
 * cli.test.ts: the command line, run in-process through run(argv, io) with an
 * in-memory Io: replay (timeline, divergences, --check, --json, trace errors and
 * their FILE:LINE messages, several files), gen (determinism, replay --check of
 * its output, codec round trip), help and usage errors. No timed tests.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isSkippable, isTraceError, printEntry, type Outcome } from '../events/index.js';
import { run } from '../cli/run.js';
import { memoryIo, nodeIo, splitLines, StringOut, type Io } from '../cli/io.js';
import { replayLines } from '../cli/replay.js';
import { errorMessage } from '../cli/format.js';
import { parseEntryLine } from '../events/index.js';
import { generate } from '../cli/gen/index.js';
import { Rng } from '../cli/gen/rng.js';

const tracePath = (name: string) => fileURLToPath(new URL(`../../test/traces/${name}`, import.meta.url));
const PASSTHROUGH = readFileSync(tracePath('passthrough.jsonl'), 'utf8');

const HEADER = '{"trace": "iommufd", "version": 1, "platform": "x86-vtd"}';
const trace = (...entries: string[]) => [HEADER, ...entries].join('\n') + '\n';

function cli(argv: string[], files: Record<string, string> = {}, opts: Parameters<typeof memoryIo>[1] = {}) {
  const io = memoryIo(files, opts);
  const code = run(argv, io);
  return { code, out: io.stdout.text, err: io.stderr.text };
}

function genText(n: number, seed = 1, platform = 'x86-vtd', workload = 'basic'): string {
  const lines: string[] = [];
  generate(workload, { entries: n, seed, platform }, (l) => lines.push(l));
  return lines.join('\n') + '\n';
}

// A divergence: line 3 expects ok, the model says ENOENT (the IOAS does not exist).
const DIVERGING = trace(
  '{"op": "open", "path": "/dev/iommu", "expect": {"ok": true, "fd": "$ifd"}}',
  '{"op": "IOMMU_DESTROY", "fd": "$ifd", "id": 5, "expect": {"ok": true}}',
  '{"op": "IOMMU_IOAS_ALLOC", "fd": "$ifd", "expect": {"ok": true, "out_ioas_id": 1}}',
);

// --- replay: good trace ---

test('replay of a good trace: timeline, summary, exit 0', () => {
  const r = cli(['replay', 'p.jsonl'], { 'p.jsonl': PASSTHROUGH });
  assert.is(r.code, 0);
  assert.is(r.err, '');
  assert.match(r.out, /^\s+8  \[pid 7\] open path=\/dev\/iommu -> ok fd=3 \[fd as \$ifd\]$/m);
  assert.match(r.out, /VFIO_DEVICE_BIND_IOMMUFD fd=\$dfd=4 iommufd=\$ifd=3 -> ok out_devid=2/);
  assert.match(r.out, /^\s+12  dma dev=0000:01:00.0 iova=0x1000 length=4 dir=read -> fault blocked: /m);
  assert.match(r.out, /IOMMU_DESTROY fd=\$ifd=3 id=\$A=1 -> EBUSY: IOAS 1 is used by HWPT 3/);
  assert.match(r.out, /device_remove dev=0000:01:00.0 -> pending: /);
  assert.match(r.out, /# detach before the IOAS can go/);
  assert.match(r.out, /p\.jsonl: OK: 16 entries; 11 ok, 2 errno, 2 fault, 1 pending; 0 divergences; state [0-9a-f]{16}/);
  assert.not.match(r.out, /\x1b\[/, 'no colours when stdout is not a TTY');
});

test('replay reads real files from disk, and --check passes on a good trace', () => {
  const io: Io = { ...nodeIo(), stdout: new StringOut(), stderr: new StringOut(), isTTY: { stdout: false, stderr: false } };
  const code = run(['replay', '--check', tracePath('passthrough.jsonl')], io);
  assert.is(code, 0);
  assert.match((io.stdout as StringOut).text, /OK: 16 entries/);
});

test('colours only on a TTY', () => {
  const r = cli(['replay', 'p.jsonl'], { 'p.jsonl': PASSTHROUGH }, { tty: true });
  assert.is(r.code, 0);
  assert.match(r.out, /\x1b\[32mok fd=3\x1b\[39m/);
});

test('--quiet prints only the summary', () => {
  const r = cli(['replay', '--quiet', 'p.jsonl'], { 'p.jsonl': PASSTHROUGH });
  assert.is(r.code, 0);
  assert.is(splitLines(r.out).length, 1);
});

// --- divergences ---

test('a divergence is reported; exit 0 without --check', () => {
  const r = cli(['replay', 'd.jsonl'], { 'd.jsonl': DIVERGING });
  assert.is(r.code, 0);
  assert.match(r.out, /DIVERGENCE expected \{"ok":true\} got \{"errno":"ENOENT"\} \(no object with ID 5\): expected ok, got errno/);
  assert.match(r.out, /1 divergence;/);
  assert.match(r.out, /DIVERGED/);
});

test('a divergence with --check exits 1', () => {
  const r = cli(['replay', '--check', 'd.jsonl'], { 'd.jsonl': DIVERGING });
  assert.is(r.code, 1);
  const q = cli(['replay', '--check', '--quiet', 'd.jsonl'], { 'd.jsonl': DIVERGING });
  assert.is(q.code, 1);
  assert.match(q.out, /DIVERGENCE line 3 IOMMU_DESTROY: expected/);
});

test('after a divergence, variables of the expect are bound to the actual outputs', () => {
  const t = trace(
    '{"op": "open", "path": "/dev/iommu", "expect": {"errno": "ENOENT", "fd": "$ifd"}}',
    '{"op": "IOMMU_IOAS_ALLOC", "fd": "$ifd", "expect": {"ok": true}}',
  );
  const r = cli(['replay', '--check', 't.jsonl'], { 't.jsonl': t });
  assert.is(r.code, 1);
  assert.match(r.out, /IOMMU_IOAS_ALLOC fd=\$ifd=3 -> ok out_ioas_id=1/);
});

// --- trace errors ---

const ERRORS: [string, string, RegExp][] = [
  ['malformed JSON', trace('{"op": "open", "path": "/dev/iommu"'), /^bad\.jsonl:2: malformed JSON: /],
  ['not an object', trace('[1, 2]'), /^bad\.jsonl:2: a line must be a JSON object$/],
  ['unknown op', trace('{"op": "IOMMU_FROB", "fd": 3}'), /^bad\.jsonl:2: op: unknown op "IOMMU_FROB"$/],
  ['unknown field', trace('{"op": "open", "path": "/dev/iommu", "colour": "red"}'), /^bad\.jsonl:2: colour: unknown field "colour" for open$/],
  ['unbound variable', trace('{"op": "close", "fd": "$nope"}'), /^bad\.jsonl:2: fd: variable \$nope is not bound/],
  ['unbound variable in a string field', trace('{"op": "driver_probe", "dev": "$d", "driver": "vfio-pci"}'), /^bad\.jsonl:2: dev: variable \$d is not bound/],
  ['value too big for its field', trace('{"op": "close", "fd": "0x1ffffffff"}'), /^bad\.jsonl:2: fd: 8589934591 does not fit in s32$/],
  ['unsafe JSON number', trace('{"op": "dma", "dev": "x", "dir": "read", "iova": 18446744073709551615}'), /^bad\.jsonl:2: iova: .*above 2\^53-1/],
  ['string field of the wrong type', trace('{"op": "dma", "dev": 5, "dir": "read"}'), /^bad\.jsonl:2: dev: 5 is not a string$/],
  ['bad enum string', trace('{"op": "dma", "dev": "x", "dir": "sideways"}'), /^bad\.jsonl:2: dir: "sideways" is not one of read, write$/],
  ['missing required field', trace('{"op": "driver_probe", "dev": "x"}'), /^bad\.jsonl:2: driver: driver_probe needs "driver"$/],
  ['bad expect', trace('{"op": "open", "path": "/dev/iommu", "expect": {"errno": "EWHAT"}}'), /^bad\.jsonl:2: expect\.errno: unknown errno "EWHAT"$/],
  ['unknown platform', '{"trace": "iommufd", "version": 1, "platform": "pdp-11"}\n', /^bad\.jsonl:1: platform: unknown platform "pdp-11"/],
  ['bad inline platform', '{"trace": "iommufd", "version": 1, "platform": {"iommus": []}}\n', /^bad\.jsonl:1: platform\.iommus: /],
  ['unknown version', '# a comment\n{"trace": "iommufd", "version": 2, "platform": "x86-vtd"}\n', /^bad\.jsonl:2: version: unsupported trace version 2 \(supported: 1\)$/],
  ['not a trace header', '{"trace": "strace", "version": 1, "platform": "x86-vtd"}\n', /^bad\.jsonl:1: trace: /],
  ['empty file', '# only a comment\n\n', /^bad\.jsonl:2: trace: the trace has no header line/],
];

for (const [name, text, want] of ERRORS) {
  test(`trace error: ${name} -> exit 2 and FILE:LINE: field: message`, () => {
    const r = cli(['replay', 'bad.jsonl'], { 'bad.jsonl': text });
    assert.is(r.code, 2);
    assert.match(r.err.trimEnd(), want);
    assert.is(splitLines(r.err).length, 1, 'one line, no stack trace');
    assert.match(r.out, /bad\.jsonl: STOPPED/);
  });
}

test('a trace error stops the file at its line (earlier entries were replayed)', () => {
  const t = trace('{"op": "open", "path": "/dev/iommu", "expect": {"ok": true}}', '{"op": "close", "fd": "$x"}', '{"op": "exit"}');
  const r = cli(['replay', '--json', 'bad.jsonl'], { 'bad.jsonl': t });
  assert.is(r.code, 2);
  const j = JSON.parse(r.out);
  assert.is(j.entries, 1);
  assert.equal(j.error, { line: 3, message: 'fd: variable $x is not bound (bind it in an earlier expect)' });
});

test('several files: a bad one stops alone, the others are replayed, exit 2', () => {
  const files = { 'a.jsonl': PASSTHROUGH, 'b.jsonl': trace('{"op": "nope"}'), 'c.jsonl': DIVERGING };
  const r = cli(['replay', '--check', 'a.jsonl', 'b.jsonl', 'missing.jsonl', 'c.jsonl'], files);
  assert.is(r.code, 2, '2 wins over 1');
  assert.match(r.out, /a\.jsonl: OK: 16 entries/);
  assert.match(r.out, /c\.jsonl: DIVERGED: 3 entries/);
  assert.match(r.err, /^b\.jsonl:2: op: unknown op "nope"$/m);
  assert.match(r.err, /^missing\.jsonl: cannot read missing\.jsonl: no such file$/m);
});

test('an exception thrown by the model is an internal error at FILE:LINE (exit 3)', () => {
  const lines = splitLines(trace('{"op": "exit"}', '{"op": "exit"}'));
  let calls = 0;
  const r = replayLines('x.jsonl', lines, {
    step: (w) => {
      if (++calls === 2) throw new Error('invariant broken');
      return { world: w, outcome: { kind: 'ok', out: {} } as Outcome };
    },
  });
  assert.is(r.entries, 1);
  assert.ok(r.error);
  assert.is(r.error!.kind, 'internal');
  assert.is(errorMessage('x.jsonl', r.error!), 'internal error at x.jsonl:3: invariant broken (this is a bug of the model, not of the trace)');
});

// --- --json ---

test('--json: one object per file with the documented keys, no timeline', () => {
  const r = cli(['replay', '--json', 'd.jsonl', 'p.jsonl', 'b.jsonl'], { 'd.jsonl': DIVERGING, 'p.jsonl': PASSTHROUGH, 'b.jsonl': trace('{"op": 1}') });
  assert.is(r.code, 2);
  const objs = splitLines(r.out).map((l) => JSON.parse(l));
  assert.is(objs.length, 3);
  for (const o of objs) {
    for (const k of ['file', 'entries', 'divergences', 'error']) assert.ok(k in o, `key ${k}`);
  }
  const [d, p, b] = objs;
  assert.is(d.file, 'd.jsonl');
  assert.is(d.entries, 3);
  assert.is(d.error, null);
  assert.equal(d.divergences, [{ line: 3, op: 'IOMMU_DESTROY', expected: { ok: true }, actual: { errno: 'ENOENT', reason: 'no object with ID 5' } }]);
  assert.equal(d.counts, { ok: 2, errno: 1, fault: 0, pending: 0 });
  assert.match(d.stateHash, /^[0-9a-f]{16}$/);
  assert.is(p.entries, 16);
  assert.equal(p.divergences, []);
  assert.equal(b.error, { line: 2, message: 'op: every entry needs "op" (a string)' });
  assert.is(b.entries, 0);
});

// --- gen ---

test('gen is deterministic: same seed, same bytes; another seed differs', () => {
  const a = cli(['gen', 'basic', '--entries', '400', '--seed', '7']);
  const b = cli(['gen', 'basic', '--entries=400', '-s', '7']);
  const c = cli(['gen', 'basic', '--entries', '400', '--seed', '8']);
  assert.is(a.code, 0);
  assert.is(a.out, b.out);
  assert.is.not(a.out, c.out);
  assert.is(splitLines(a.out).length, 401);
  assert.is(a.out, genText(400, 7));
});

test('gen: every entry has an expect, fds and IDs are variables', () => {
  const lines = splitLines(genText(1500, 3));
  const entries = lines.slice(1).map((l) => JSON.parse(l));
  assert.ok(entries.every((e) => e.expect !== undefined));
  const ops = new Set(entries.map((e) => e.op));
  for (const o of ['device_add', 'driver_probe', 'open', 'IOMMU_IOAS_ALLOC', 'VFIO_DEVICE_BIND_IOMMUFD', 'VFIO_DEVICE_ATTACH_IOMMUFD_PT',
    'VFIO_DEVICE_DETACH_IOMMUFD_PT', 'IOMMU_DESTROY', 'dma', 'dma_map', 'close', 'exit'])
    assert.ok(ops.has(o), `op ${o} appears`);
  const text = lines.join('\n');
  assert.match(text, /"fd":"\$ifd\d+"/);
  assert.match(text, /"errno":"EBUSY"/);
  assert.match(text, /"fault":"blocked"/);
  assert.match(text, /"driver_probe".*"errno":"EBUSY"/);
  assert.match(text, /"pending":true/);
});

for (const platform of ['x86-vtd', 'arm-smmuv3']) {
  test(`replay --check of a generated trace passes (${platform})`, () => {
    const text = genText(3000, 11, platform);
    const r = cli(['replay', '--check', '--json', 'g.jsonl'], { 'g.jsonl': text });
    assert.is(r.code, 0, r.err);
    const j = JSON.parse(r.out);
    assert.is(j.entries, 3000);
    assert.equal(j.divergences, []);
    assert.is(j.error, null);
  });
}

test('gen and replay end in the same state', () => {
  const lines: string[] = [];
  const g = generate('basic', { entries: 800, seed: 5, platform: 'x86-vtd' }, (l) => lines.push(l));
  const r = replayLines('g', lines);
  assert.is(r.stateHash, g.stateHash);
});

test('codec round trip: parse, printEntry, parse again gives the same entry (and the same line)', () => {
  const lines = splitLines(genText(1500, 21));
  let n = 0;
  lines.forEach((text, i) => {
    if (i === 0 || isSkippable(text)) return;
    const e = parseEntryLine(text, i + 1);
    if (isTraceError(e)) throw new Error(`line ${i + 1}: ${e.message}`);
    const printed = printEntry(e);
    assert.is(printed, text, 'generated lines are canonical');
    const again = parseEntryLine(printed, i + 1);
    assert.equal(again, e);
    n++;
  });
  assert.is(n, 1500);
});

test('gen usage errors', () => {
  assert.is(cli(['gen']).code, 2);
  const w = cli(['gen', 'nope']);
  assert.is(w.code, 2);
  assert.match(w.err, /unknown workload "nope" \(known: basic, vm-churn\)/);
  assert.match(cli(['gen', 'basic', '--entries', 'many']).err, /--entries: "many" is not a non-negative integer/);
  assert.match(cli(['gen', 'basic', '--platform', 'pdp-11']).err, /unknown platform "pdp-11"/);
});

test('rng: mulberry32 is deterministic and spreads', () => {
  const a = new Rng(1), b = new Rng(1), c = new Rng(2);
  const xs = Array.from({ length: 5 }, () => a.u32());
  assert.equal(xs, Array.from({ length: 5 }, () => b.u32()));
  assert.is.not(xs[0], c.u32());
  const r = new Rng(9);
  for (let i = 0; i < 1000; i++) {
    const v = r.int(6);
    assert.ok(v >= 0 && v < 6);
  }
});

// --- help and usage ---

test('help, --help and usage errors', () => {
  const h = cli(['help']);
  assert.is(h.code, 0);
  assert.match(h.out, /replay/);
  assert.match(h.out, /gen/);
  assert.match(cli(['replay', '--help']).out, /Usage: iommufd-sim replay \[--check\] \[--json\] \[--quiet\] FILE\.\.\./);
  assert.match(cli(['help', 'gen']).out, /basic/);
  assert.match(cli(['help', 'ops']).out, /VFIO_DEVICE_BIND_IOMMUFD/);
  assert.is(cli(['--help']).code, 0);
  assert.is(cli([]).code, 2);
  const u = cli(['frobnicate']);
  assert.is(u.code, 2);
  assert.match(u.err, /unknown command "frobnicate"/);
  const f = cli(['replay', '--frob', 'x']);
  assert.is(f.code, 2);
  assert.match(f.err, /unknown option --frob/);
  assert.is(cli(['replay']).code, 2);
});

// --- progress ---

test('progress bar on a TTY stderr for a long trace, cleared at the end', () => {
  const lines = [HEADER];
  for (let i = 0; i < 21_000; i++) lines.push('{"op": "exit", "pid": 5}');
  let t = 0;
  const r = cli(['replay', '--quiet', 'long.jsonl'], { 'long.jsonl': lines.join('\n') + '\n' }, { tty: false, stderrTTY: true, now: () => (t += 10) });
  assert.is(r.code, 0);
  assert.match(r.err, /\r\x1b\[Klong\.jsonl \[#*-*\] +\d+% [\d,]+\/21,000 entries [\d,]+\/s/);
  assert.ok(r.err.endsWith('\r\x1b[K'), 'cleared at the end');
  const plain = cli(['replay', '--quiet', 'long.jsonl'], { 'long.jsonl': lines.join('\n') + '\n' });
  assert.is(plain.err, '', 'no bar when stderr is not a TTY');
});

test('replay --faults prints the IOMMU fault log; --json carries it', () => {
  const t = trace(
    '{"op": "device_add", "dev": "d0", "group": 1, "expect": {"ok": true}}',
    '{"op": "dma", "dev": "d0", "iova": "0x1000", "length": 4, "dir": "read", "expect": {"fault": "not_present"}}',
  );
  const r = cli(['replay', '--quiet', '--faults', 'f.jsonl'], { 'f.jsonl': t });
  assert.is(r.code, 0);
  assert.match(r.out, /IOMMU fault log \(1\)/);
  assert.match(r.out, /dmar0 #0 d0 read 0x1000: not_present/);
  const j = JSON.parse(cli(['replay', '--json', '--faults', 'f.jsonl'], { 'f.jsonl': t }).out);
  assert.equal(j.faults.map((f: { iova: string; fault: string }) => [f.iova, f.fault]), [['0x1000', 'not_present']]);
});

test('fuzz: a clean campaign reports coverage; a planted bug fails with a counterexample that replay --invariants reproduces', () => {
  const clean = cli(['fuzz', '--runs', '20', '--seed', '2', '--json', '--out', 'fz']);
  assert.is(clean.code, 0, clean.out + clean.err);
  const j = JSON.parse(clean.out);
  assert.is(j.failure, null);
  assert.ok(j.coverage.ops.reached > 10 && j.coverage.ops.missing.length === j.coverage.ops.of - j.coverage.ops.reached);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iommufd-fuzz-'));
  try {
    const io = nodeIo();
    const stdout = new StringOut();
    const code = run(['fuzz', '--runs', '50', '--bug', 'copy-pins-twice', '--out', dir], { ...io, stdout, stderr: new StringOut(), isTTY: { stdout: false, stderr: false } });
    assert.is(code, 1, stdout.text);
    const file = /counterexample: (\S+)/.exec(stdout.text)![1]!;
    const rep = new StringOut();
    const rc = run(['replay', '--check', '--quiet', '--invariants', file], { ...io, stdout: rep, stderr: new StringOut(), isTTY: { stdout: false, stderr: false } });
    assert.is(rc, 1, rep.text);
    assert.match(rep.text, /INVARIANT copy-shares-pages/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('replay --state prints the model state at a divergence; --json puts it in the divergence', () => {
  const r = cli(['replay', '--quiet', '--state', 'd.jsonl'], { 'd.jsonl': DIVERGING });
  assert.is(r.code, 0);
  assert.match(r.out, /state: \{ "devices": \[\]/);
  const j = JSON.parse(cli(['replay', '--json', '--state', 'd.jsonl'], { 'd.jsonl': DIVERGING }).out);
  assert.equal(j.divergences[0].state.iommufds, [{ ctx: 1, objects: [] }]);
});

test('fuzz usage errors', () => {
  assert.is(cli(['fuzz', '--bug', 'nope']).code, 2);
  assert.is(cli(['fuzz', '--runs', '5', '--time', '1s']).code, 2);
  assert.is(cli(['fuzz', '--time', 'soon']).code, 2);
});

test('vm-churn: deterministic, and replay --check of it passes', () => {
  const a = genText(3000, 5, 'x86-vtd', 'vm-churn');
  assert.is(a, genText(3000, 5, 'x86-vtd', 'vm-churn'));
  assert.match(a, /IOMMU_IOAS_UNMAP/);
  const r = cli(['replay', '--check', '--quiet', 'v.jsonl'], { 'v.jsonl': a });
  assert.is(r.code, 0, r.out + r.err);
  assert.match(r.out, /0 divergences/);
});

test.run();
