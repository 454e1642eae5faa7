/*
 * fixtures.test.ts: every trace in fixtures/ through `iommufd-sim replay --check`
 * in-process: good fixtures replay with zero divergences and no invariant violation
 * (`--invariants`, exit 0), and each trace in
 * fixtures/bad/ stops with a trace error (exit 2) naming its file and line.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../cli/run.js';
import { nodeIo, StringOut } from '../cli/io.js';

const root = fileURLToPath(new URL('../../fixtures/', import.meta.url));

function traces(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...traces(p));
    else if (name.endsWith('.jsonl')) out.push(p);
  }
  return out;
}

function replay(args: string[]) {
  const stdout = new StringOut();
  const stderr = new StringOut();
  const code = run(['replay', ...args], { ...nodeIo(), stdout, stderr, isTTY: { stdout: false, stderr: false } });
  return { code, out: stdout.text, err: stderr.text };
}

const all = traces(root);
const bad = all.filter((p) => p.includes('/bad/'));
const good = all.filter((p) => !p.includes('/bad/') && !p.includes('/pending/'));

test('there are fixtures to replay', () => {
  assert.ok(good.length >= 8, `${good.length} good fixtures`);
  assert.ok(bad.length >= 5, `${bad.length} bad fixtures`);
});

for (const p of good) {
  test(`replay --check ${p.slice(root.length)}`, () => {
    const r = replay(['--check', '--quiet', '--invariants', p]);
    assert.is(r.code, 0, r.out + r.err);
  });
}

for (const p of bad) {
  test(`bad input ${p.slice(root.length)} exits 2 with FILE:LINE`, () => {
    const r = replay(['--quiet', p]);
    assert.is(r.code, 2, r.out + r.err);
    assert.match(r.err, new RegExp(`${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+`));
  });
}

test.run();
