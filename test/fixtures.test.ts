/*
 * fixtures.test.ts: every trace in fixtures/ through `iommufd-sim replay --check`
 * in-process: good fixtures replay with zero divergences and no invariant violation
 * (`--invariants`, exit 0) and carry an `expect` on every entry; each trace in
 * fixtures/bad/ stops with a trace error (exit 2) naming its file and line.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isSkippable } from '../events/index.js';
import { run } from '../cli/run.js';
import { nodeIo, StringOut } from '../cli/io.js';
import { fixtureFiles, readLines } from './kit.js';

function replay(args: string[]) {
  const stdout = new StringOut();
  const stderr = new StringOut();
  const code = run(['replay', ...args], { ...nodeIo(), stdout, stderr, isTTY: { stdout: false, stderr: false } });
  return { code, out: stdout.text, err: stderr.text };
}

const { root, good, bad } = fixtureFiles();

test('there are fixtures to replay', () => {
  assert.ok(good.length >= 8, `${good.length} good fixtures`);
  assert.ok(bad.length >= 5, `${bad.length} bad fixtures`);
  const selftest = good.filter((p) => p.includes('/selftest/'));
  assert.ok(selftest.length >= 15, `only ${selftest.length} ported selftests`);
});

for (const p of good) {
  test(`replay --check ${p.slice(root.length)}`, () => {
    const r = replay(['--check', '--quiet', '--invariants', p]);
    assert.is(r.code, 0, r.out + r.err);
    const entries = readLines(p).filter((l) => !isSkippable(l)).slice(1);
    assert.ok(entries.length > 0);
    entries.forEach((l, k) => assert.ok('expect' in JSON.parse(l), `entry ${k + 1} of ${p} carries an expect`));
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
