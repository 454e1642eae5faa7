/*
 * hash.ts: a deterministic fingerprint of a World, for determinism tests and replay
 * reports: a canonical walk of the control plane plus the persistent collections'
 * contents, folded with FNV-1a (64-bit). Same World, same hash, on any machine,
 * whatever order its records' keys were inserted in.
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
  } else if (typeof v === 'object' && !isPlain(v)) {
    // Persistent collections are compared by content, never by their internals
    // (B+trees share nodes across versions).
    const it = (v as { entries?: () => Iterable<unknown> }).entries;
    if (typeof it !== 'function') throw new Error(`stateHash: no canonical form for ${v.constructor.name}`);
    canon(Array.from(it.call(v)), out);
  } else if (typeof v === 'object') {
    out.push('{');
    // Sorted: two equal Worlds built by different paths may differ in key order.
    for (const k of Object.keys(v as object).sort()) {
      out.push(k);
      canon((v as Record<string, unknown>)[k], out);
    }
    out.push('}');
  }
}

function isPlain(v: object): boolean {
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

/**
 * FNV-1a over the string's UTF-16 code units, 64-bit, computed in two 32-bit halves
 * (exact: the prime is 2^40 + 0x1b3, so h * prime = h * 0x1b3 + (h << 40) mod 2^64).
 */
export function fnv1a64(s: string): string {
  let hi = 0xcbf29ce4, lo = 0x84222325;
  for (let i = 0; i < s.length; i++) {
    lo = (lo ^ s.charCodeAt(i)) >>> 0;
    const p = lo * 0x1b3; // < 2^41: exact
    const nlo = p >>> 0;
    hi = (Math.imul(hi, 0x1b3) + (p - nlo) / 0x100000000 + (lo << 8)) >>> 0;
    lo = nlo;
  }
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}

export function stateHash(w: World): string {
  const out: string[] = [];
  const { mem, hw, platform, ...control } = w;
  void platform;
  canon(control, out);
  canon([...mem.frames.entries()].map(([, f]) => f), out);
  canon([...mem.pins.entries()], out);
  for (const [pid, pm] of Object.entries(mem.procs)) {
    out.push(`p${pid}`);
    canon([...pm.vmas.values()], out);
    canon([...pm.pages.values()], out);
  }
  for (const u of hw.units) {
    out.push(u.name);
    canon(hwc.iotlbContents(hw, u.name), out);
    canon(hwc.faultLog(hw, u.name), out);
    canon([...u.contexts.entries()].map(([rid, , e]) => [rid, e]).sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : 1)), out);
  }
  for (const [id] of hw.domains.entries()) canon(hwc.domainRuns(hw, id as number), out);
  return fnv1a64(out.join('|'));
}
