/*
 * cli-io.test.ts: the streaming line reader of nodeIo against splitLines: chunk
 * boundaries (1 MiB chunks), CRLF, multi-byte UTF-8 split across chunks, a last line
 * without newline, comment and blank lines in the entry count; and argv parsing.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { countEntriesIn, nodeIo, splitLines } from '../cli/io.js';
import { parseArgs, intFlag, UsageError } from '../cli/args.js';

function withFile(text: string, f: (p: string) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iommufd-sim-io-'));
  const p = path.join(dir, 't.jsonl');
  fs.writeFileSync(p, text);
  try {
    f(p);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('readLines streams a >1 MiB file exactly like splitLines (CRLF, UTF-8 across chunks, no final newline)', () => {
  const parts: string[] = ['{"trace": "iommufd", "version": 1, "platform": "x86-vtd"}'];
  let size = 0;
  for (let i = 0; size < 2.5 * 1024 * 1024; i++) {
    size += parts[parts.length - 1]!.length + 1;
    parts.push(i % 7 === 0 ? '# comment é€𝄞' : i % 11 === 0 ? '   ' : `{"op": "exit", "pid": ${i}, "note": "ünïcødé ${'€'.repeat(i % 5)}𝄞"}${i % 3 === 0 ? '\r' : ''}`);
  }
  const text = parts.join('\n');
  withFile(text, (p) => {
    const io = nodeIo();
    const got = [...io.readLines(p)];
    assert.equal(got, splitLines(text));
    assert.is(io.countEntries(p), countEntriesIn(text));
    assert.is(io.fileSize(p), Buffer.byteLength(text));
  });
  withFile(text + '\n', (p) => assert.equal([...nodeIo().readLines(p)], splitLines(text + '\n')));
});

test('splitLines and countEntriesIn', () => {
  assert.equal(splitLines(''), []);
  assert.equal(splitLines('a\r\nb\n\nc'), ['a', 'b', '', 'c']);
  assert.equal(splitLines('a\n'), ['a']);
  assert.is(countEntriesIn('# c\n{"h":1}\n\n  # x\n{"op":1}\n{"op":2}\n'), 2);
  assert.is(countEntriesIn(''), 0);
});

test('readLines of a missing file fails with a readable message', () => {
  assert.throws(() => [...nodeIo().readLines('/nonexistent/x.jsonl')], /cannot read \/nonexistent\/x\.jsonl: no such file/);
});

test('parseArgs: flags, values, --, -, unknown options', () => {
  const specs = [{ name: 'check', doc: '' }, { name: 'seed', short: 's', value: 'S', doc: '' }];
  const p = parseArgs(['a', '--check', '-s', '5', '-', '--', '--check'], specs);
  assert.equal(p.positional, ['a', '-', '--check']);
  assert.is(p.flags.check, true);
  assert.is(intFlag(p, 'seed', 1), 5);
  assert.is(intFlag(parseArgs(['--seed=0x10'], specs), 'seed', 1), 16);
  assert.throws(() => parseArgs(['--nope'], specs), (e: unknown) => e instanceof UsageError);
  assert.throws(() => parseArgs(['--seed'], specs), /needs a value/);
  assert.throws(() => parseArgs(['--check=1'], specs), /takes no value/);
  assert.throws(() => intFlag(parseArgs(['--seed', '-3'], specs), 'seed', 1), /not a non-negative integer/);
});

test.run();
