/*
 * hash.ts: a deterministic fingerprint of a World, for determinism tests and replay
 * reports: a canonical walk of the control plane plus the persistent collections'
 * contents, folded with FNV-1a (64-bit). Same World, same hash, on any machine.
 */
import type { World } from './world.js';
import * as hwc from '../hw/index.js';

function canon(v: unknown, out: string[]): void {
  if (v === null || v === undefined) out.push('n');
  else if (typeof v === 'bigint') out.push(`b${v.toString(16)}`);
  else if (typeof v === 'number' || typeof v === 'boolean') out.push(String(v));
  else if (typeof v === 'string') out.push(JSON.stringify(v));
  else if (Array.isArray(v)) {
    out.push('[');
    for (const x of v) canon(x, out);
    out.push(']');
  } else if (typeof v === 'object') {
    out.push('{');
    for (const k of Object.keys(v as object)) {
      out.push(k);
      canon((v as Record<string, unknown>)[k], out);
    }
    out.push('}');
  }
}

export function fnv1a64(s: string): string {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < s.length; i++) {
    h ^= BigInt(s.charCodeAt(i));
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, '0');
}

export function stateHash(w: World): string {
  const out: string[] = [];
  const { mem, hw, platform, ...control } = w;
  void platform;
  canon(control, out);
  canon([...mem.frames.entries()].map(([, f]) => f), out);
  for (const [pid, pm] of Object.entries(mem.procs)) {
    out.push(`p${pid}`);
    canon([...pm.vmas.values()], out);
    canon([...pm.pages.values()], out);
  }
  for (const u of hw.units) {
    out.push(u.name);
    canon(hwc.iotlbContents(hw, u.name), out);
  }
  for (const [id] of hw.domains.entries()) canon(hwc.domainRuns(hw, id as number), out);
  return fnv1a64(out.join('|'));
}
