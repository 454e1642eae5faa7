/*
 * persistence.test.ts: old Worlds stay valid. Time travel keeps every state a replay
 * passed through, so no step may change a structure an earlier World can reach. Each
 * World's stateHash is taken when it is made and again after the whole replay: equal.
 * Each check runs twice: with Worlds frozen (the library default, where a stray write
 * would throw) and unfrozen (what the CLI runs, where only this test would see it).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { setFreeze, stateHash, type World } from '../core/index.js';
import { replayLines } from '../cli/replay.js';
import { fixtureFiles, genLines, readLines } from './kit.js';

function checkTrace(name: string, lines: readonly string[]) {
  for (const frozen of [true, false]) {
    setFreeze(frozen);
    try {
      checkOnce(`${name} (${frozen ? 'frozen' : 'unfrozen'})`, lines);
    } finally {
      setFreeze(true);
    }
  }
}

function checkOnce(name: string, lines: readonly string[]) {
  // Hash each World as it is made, then all of them again after the whole replay.
  const worlds: World[] = [];
  const early: string[] = [];
  const r = replayLines(name, lines, {
    onEntry: (ev) => {
      worlds.push(ev.world);
      early.push(stateHash(ev.world));
    },
  });
  assert.is(r.error, null, name);
  assert.ok(new Set(early).size > worlds.length / 3, `${name}: states change`);
  assert.equal(worlds.map((w) => stateHash(w)), early, name);
}

test('every World of a replay is unchanged by the steps after it (story, isolation, selftest)', () => {
  const { good } = fixtureFiles();
  const picks = ['story/001-passthrough-story.jsonl', 'isolation/001-two-vms-same-iova.jsonl', 'isolation/002-group-lifecycle.jsonl', 'selftest/040-dirty-tracking-get-dirty-bitmap-640k.jsonl'];
  for (const pick of picks) {
    const p = good.find((x) => x.endsWith(pick));
    assert.ok(p, pick);
    checkTrace(pick, readLines(p!));
  }
});

test('every World of generated basic and vm-churn traces is unchanged by later steps', () => {
  for (const wl of ['basic', 'vm-churn']) checkTrace(wl, genLines(wl, 600, 3));
});

test.run();
