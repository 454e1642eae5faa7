// world.ts's copy helpers must name every field of a World: a field they miss would be
// silently dropped (shallowWorld) or left stale (assignWorld) by the fast step paths.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BUILTIN_PLATFORMS, initialWorld } from './index.js';
import { withBugs } from './bugs.js';
import { assignWorld, shallowWorld, type Mutable, type World } from './world.js';

const base = withBugs(initialWorld(BUILTIN_PLATFORMS['x86-vtd']!), ['unmap-no-flush']);

test('shallowWorld copies every field of a World, and nothing else', () => {
  const c = shallowWorld(base);
  assert.equal(Object.keys(c).sort(), Object.keys(base).sort());
  for (const k of Object.keys(base) as (keyof World)[]) assert.is(c[k], base[k], k);
});

test('assignWorld writes every field of a World into another', () => {
  // A World whose every field differs from base's (fresh objects, other numbers).
  const other = shallowWorld(initialWorld(BUILTIN_PLATFORMS['x86-vtd']!));
  const from = { ...shallowWorld(base) } as Mutable<World>;
  for (const k of Object.keys(from) as (keyof World)[]) {
    const v = from[k];
    (from as Record<string, unknown>)[k] = typeof v === 'number' ? v + 1 : Array.isArray(v) ? [...v] : typeof v === 'object' && v !== null ? Object.create(v as object) : v;
  }
  assignWorld(other, from);
  assert.equal(Object.keys(other).sort(), Object.keys(base).sort());
  for (const k of Object.keys(base) as (keyof World)[]) assert.is(other[k], from[k], k);
});

test.run();
