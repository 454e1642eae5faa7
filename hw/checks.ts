// Library checks for property tests: the IOTLB must agree with the page tables it
// caches (after the caller's invalidations), and a domain's translations must match the
// software model (compared run by run). Pure reads: nothing here changes a HwState.
// Invariant kept: a reported disagreement names the entry and why, in a stable order
// (unit name, then domain, IOVA, depth).

import { RW, spanBytes } from './format.js';
import { tlbEntries } from './iotlb.js';
import { stats, PtStats, walk, WalkResult } from './pagetable.js';
import { PtRun, runs } from './ptiter.js';
import { HwState, getDomain, getUnit } from './state.js';

export interface TlbDisagreement {
  unit: string;
  domain: number;
  iova: bigint;
  pageSize: bigint;
  /** What the entry translates iova to. */
  pa: bigint;
  prot: number;
  /** freed: the domain no longer exists; unmapped: part of the range has no translation
   *  now; changed: translated, but to another pa or with another prot. */
  reason: 'freed' | 'unmapped' | 'changed';
}

export function iotlbConsistent(hw: HwState): TlbDisagreement[] {
  const bad: TlbDisagreement[] = [];
  for (const unit of hw.units) {
    const f = unit.format;
    const g = BigInt(f.granuleShift);
    for (const e of tlbEntries(unit.iotlb)) {
      const iova = BigInt(e.iovaBase) << g;
      const pageSize = spanBytes(f, e.depth);
      const pa = BigInt(e.pfn) << g;
      const base = { unit: unit.name, domain: e.domain, iova, pageSize, pa, prot: e.prot };
      const d = hw.domains.get(e.domain);
      if (!d || !d.pt) {
        bad.push({ ...base, reason: 'freed' });
        continue;
      }
      // Semantic agreement: one run covering the whole entry, same pa and prot.
      const r = runs(d.pt, iova, iova + pageSize - 1n);
      const only = r[0];
      if (r.length === 1 && only && only.iova === iova && only.length === pageSize && only.pa === pa && only.prot === (e.prot & RW)) continue;
      const covered = r.reduce((n, x) => n + x.length, 0n);
      bad.push({ ...base, reason: covered === pageSize ? 'changed' : 'unmapped' });
    }
  }
  return bad;
}

/** Coalesced translations of a domain (optionally within [first, last]), ascending. */
export function domainRuns(hw: HwState, id: number, first?: bigint, last?: bigint): PtRun[] {
  const d = getDomain(hw, id);
  return d.pt ? runs(d.pt, first, last) : [];
}

export function domainWalk(hw: HwState, id: number, iova: bigint): WalkResult | null {
  const d = getDomain(hw, id);
  return d.pt ? walk(d.pt, iova) : null;
}

export function domainStats(hw: HwState, id: number): PtStats {
  const d = getDomain(hw, id);
  return d.pt ? stats(d.pt) : { nodes: 0, leaves: [] };
}

export interface TlbView {
  domain: number;
  iova: bigint;
  pageSize: bigint;
  pa: bigint;
  prot: number;
}

/** The unit's IOTLB contents in a stable order (domain, IOVA, size), for tests and UI. */
export function iotlbContents(hw: HwState, unitName: string): TlbView[] {
  const unit = getUnit(hw, unitName);
  const g = BigInt(unit.format.granuleShift);
  return tlbEntries(unit.iotlb).map((e) => ({
    domain: e.domain,
    iova: BigInt(e.iovaBase) << g,
    pageSize: spanBytes(unit.format, e.depth),
    pa: BigInt(e.pfn) << g,
    prot: e.prot,
  }));
}
