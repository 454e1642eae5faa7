/*
 * kit.ts: helpers for tests. `runTrace` runs entries written as trace-format objects
 * with `expect` and reports every divergence, so a rule under test reads the way a
 * fixture reads; `fixtureFiles`, `readLines` and `genLines` give whole traces, which
 * tests replay with the CLI's own `replayLines` (cli/replay.ts). `firstMapCopy` starts
 * an in-place stepper's working copy, for the tests of its reuse and rollback.
 */
import { describeOutcome, expectOf, isTraceError, matchExpect, parseEntry, resolveEntry, type Bindings, type Outcome } from '../events/index.js';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initialWorld, resolvePlatform, step, type World } from '../core/index.js';
import { generate } from '../cli/gen/index.js';
import { COPIERS, InPlace } from '../core/workingCopy.js';
import type { Input } from '../events/index.js';

export interface Run {
  readonly world: World;
  readonly outcomes: Outcome[];
  readonly divergences: string[];
  readonly vars: Bindings;
}

export function runTrace(platform: string | Record<string, unknown>, entries: readonly Record<string, unknown>[], start?: World): Run {
  const p = resolvePlatform(platform);
  if (!p.ok) throw new Error(p.message);
  let world = start ?? initialWorld(p.platform);
  const vars: Bindings = new Map();
  const outcomes: Outcome[] = [];
  const divergences: string[] = [];
  entries.forEach((o, idx) => {
    const line = idx + 2;
    const e = parseEntry(o, line);
    if (isTraceError(e)) throw new Error(`entry ${line}: ${e.message}`);
    const input = resolveEntry(e, vars);
    if (isTraceError(input)) throw new Error(`entry ${line}: ${input.message}`);
    const r = step(world, input);
    world = r.world;
    outcomes.push(r.outcome);
    if (e.expect) {
      const m = matchExpect(e.expect, r.outcome, vars);
      if (m.diverged)
        divergences.push(`#${line} ${e.op}: ${m.detail} (got ${JSON.stringify(expectOf(r.outcome))}: ${describeOutcome(r.outcome)})`);
    }
  });
  return { world, outcomes, divergences, vars };
}

/** Shorthands for the common setup of a VFIO cdev test. */
export const T = {
  dev: (dev: string, group: number, extra: Record<string, unknown> = {}) => ({ op: 'device_add', dev, group, ...extra, expect: { ok: true } }),
  vfio: (dev: string) => ({ op: 'driver_probe', dev, driver: 'vfio-pci', expect: { ok: true } }),
  iommufd: (v: string, pid = 1) => ({ op: 'open', pid, path: '/dev/iommu', expect: { ok: true, fd: v } }),
  cdev: (dev: string, v: string, pid = 1) => ({ op: 'open', pid, dev, expect: { ok: true, fd: v } }),
  ioas: (ifd: string, v: string, pid = 1) => ({ op: 'IOMMU_IOAS_ALLOC', pid, fd: ifd, expect: { ok: true, out_ioas_id: v } }),
  bind: (dfd: string, ifd: string, v: string, pid = 1) => ({ op: 'VFIO_DEVICE_BIND_IOMMUFD', pid, fd: dfd, iommufd: ifd, expect: { ok: true, out_devid: v } }),
  attach: (dfd: string, pt: string, v: string, pid = 1) => ({ op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', pid, fd: dfd, pt_id: pt, expect: { ok: true, pt_id: v } }),
};

/** Every fixture trace, split into the good ones and the ones in fixtures/bad/ (pending/ excluded). */
export function fixtureFiles(): { root: string; good: string[]; bad: string[] } {
  const root = fileURLToPath(new URL('../../fixtures/', import.meta.url));
  const walk = (dir: string): string[] =>
    readdirSync(dir).sort().flatMap((name) => {
      const p = join(dir, name);
      return statSync(p).isDirectory() ? walk(p) : name.endsWith('.jsonl') ? [p] : [];
    });
  const all = walk(root).filter((p) => !p.includes('/pending/'));
  return { root, good: all.filter((p) => !p.includes('/bad/')), bad: all.filter((p) => p.includes('/bad/')) };
}

export function readLines(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n');
}

/** A generated trace's lines (gen WORKLOAD on x86-vtd). */
export function genLines(workload: string, entries: number, seed: number): string[] {
  const lines: string[] = [];
  generate(workload, { entries, seed, platform: 'x86-vtd' }, (l) => lines.push(l));
  return lines;
}

/**
 * After a run that bound `$ifd`, `$A` and `$buf`: the input of a FIXED_IOVA MAP of 4 KiB
 * of `$buf` at `iova`, an in-place stepper's state, and the World of that MAP's first
 * (sealed) working copy; the next MAP copier call on that World with `own` reuses it.
 */
export function firstMapCopy(r: Run, iova: bigint): { input: Input; own: InPlace; world: World } {
  const input = {
    op: 'IOMMU_IOAS_MAP', pid: 1,
    f: { fd: Number(r.vars.get('$ifd')), ioas_id: Number(r.vars.get('$A')), flags: 5, user_va: r.vars.get('$buf'), length: 4096n, iova, __reserved: 0 },
  } as unknown as Input;
  const own = new InPlace();
  const first = COPIERS.IOMMU_IOAS_MAP!(r.world, input, own)!;
  first.seal();
  return { input, own, world: first.world };
}
