// DMA through a unit: context entry, then every byte of the range translated leaf by
// leaf through the IOTLB (filled on miss by a page walk), with the permission checked
// per leaf. The result is exactly what the hardware structures allow: a stale IOTLB
// entry is used as-is. Invariants: a DMA that hits the IOTLB everywhere and changes no
// dirty bit returns the very same HwState object (the hot path allocates no state);
// a fault stops the DMA at its first faulting byte, keeping earlier fills and dirty
// bits, and appends one record to the unit's fault log. A tracked write sets DIRTY on
// the leaf the current page table has at that IOVA (none if a stale IOTLB entry was
// used for an unmapped range: there is no PTE left to mark).
// Also here: IOTLB invalidation as the driver issues it, alone or right after an unmap
// (domainUnmapSync, iommu_unmap + iotlb_sync as one step).

import { READ, WRITE, smallNumber } from './format.js';
import { Iotlb, TlbEntry, tlbFill, tlbInvalidate, tlbInvalidateRange, tlbLookup } from './iotlb.js';
import { PageTable, leafAt, leafDepth, leafPfn, leafProt, unmapGranules, usualGranules, usualRange } from './pagetable.js';
import { markDirty } from './ptiter.js';
import { Domain, FaultKind, FaultLog, FaultRecord, HwState, Unit, domainUnmap, getDomain, getUnit, unitsWith, withPt, withUnit } from './state.js';

export interface DmaSegment {
  iova: bigint;
  pa: bigint;
  length: bigint;
}

export type DmaResult =
  | { ok: true; pa: bigint; segments: DmaSegment[] }
  | { ok: false; fault: FaultKind; iova: bigint; reason: string };

export type DmaDir = 'read' | 'write';

const TWO53 = 2 ** 53;
const B53 = 1n << 53n;
const U64_END = 1n << 64n;

/** pa of byte `off` of physical granule paG, as a bigint (exact at any size). */
function toBig(paG: number, off: number, G: number, gs: number): bigint {
  const n = paG * G + off;
  return n < TWO53 ? BigInt(n) : (BigInt(paG) << BigInt(gs)) + BigInt(off);
}

function fail(hw: HwState, unit: Unit, rid: string, domain: number | null, dir: DmaDir, fault: FaultKind, iova: bigint, reason: string): { hw: HwState; result: DmaResult } {
  const rec: FaultRecord = Object.freeze({ seq: unit.faults.count, unit: unit.name, rid, domain, dir, fault, iova, reason });
  const log = new FaultLog(rec, unit.faults, unit.faults.count + 1);
  const u = new Unit(unit.name, unit.format, unit.contexts, unit.iotlb, log);
  return { hw: withUnit(hw, u), result: { ok: false, fault, iova, reason } };
}

export function dma(hw: HwState, unitName: string, rid: string, iova: bigint, length: bigint, dir: DmaDir): { hw: HwState; result: DmaResult } {
  if (length <= 0n || iova < 0n || iova >= U64_END) throw new Error(`bad DMA range 0x${iova.toString(16)}+${length}`);
  let unit = getUnit(hw, unitName);
  const ctx = unit.contexts.get(rid);
  if (ctx === undefined || ctx.kind === 'blocked') {
    const why = ctx === undefined ? `no context entry for ${rid}` : `context of ${rid} is blocked`;
    return fail(hw, unit, rid, null, dir, 'blocked', iova, why);
  }
  const did = ctx.domain;
  const f = unit.format;
  const gs = f.granuleShift;
  const G = f.granule;
  const top = f.reachNumber;
  // Bigint-literal checks, then exact numbers below top (iova < 2^48; a length of 2^53
  // or more reaches beyond top whatever a is, and a + n is exact up to top).
  if (iova >= f.reach) return fail(hw, unit, rid, did, dir, 'not_present', iova, `iova beyond ${f.iovaBits}-bit ${f.name} reach`);
  const a = smallNumber(iova);
  const len = smallNumber(length); // length > 0: -1 means 2^53 or more
  const n = len < 0 ? Infinity : len;
  const beyond = a + n > top;
  const end = beyond ? top : a + n;
  const need = dir === 'write' ? WRITE : READ;
  let domain: Domain | undefined;
  let tlb: Iotlb = unit.iotlb;
  let pt: PageTable | null = null;
  const spans = f.spans;
  // The segment being built: iova, pa granule, pa byte offset, length (exact numbers);
  // earlier ones as flat quads in `done`, allocated only for a DMA of several segments.
  let sIova = a;
  let sPaG = 0;
  let sOff = 0;
  let sLen = 0;
  let done: number[] | undefined;
  let cur = a;
  let faulted: { kind: FaultKind; at: number; reason: string } | undefined;
  while (cur < end) {
    const page = Math.floor(cur / G);
    let e: TlbEntry | undefined = tlbLookup(tlb, did, page, spans);
    if (e === undefined) {
      domain ??= getDomain(hw, did);
      pt ??= domain.pt;
      if (pt === null) {
        faulted = { kind: 'blocked', at: cur, reason: `domain ${did} is blocking` };
        break;
      }
      const leaf = leafAt(pt, page);
      if (leaf === undefined) {
        faulted = { kind: 'not_present', at: cur, reason: `no translation in domain ${did}` };
        break;
      }
      const depth = leafDepth(leaf);
      const span = spans[depth]!;
      const r = tlbFill(tlb, did, depth, page - (page & (span - 1)), span, leafPfn(leaf), leafProt(leaf) & (READ | WRITE));
      tlb = r.tlb;
      e = r.entry;
    }
    if ((e.prot & need) === 0) {
      faulted = { kind: 'permission', at: cur, reason: `${dir} denied by prot ${e.prot} in domain ${did}` };
      break;
    }
    const leafStart = e.iovaBase * G;
    const leafEnd = leafStart + e.span * G;
    const chunkEnd = leafEnd < end ? leafEnd : end;
    const off = cur - leafStart;
    const offG = Math.floor(off / G);
    // Later chunks start on a leaf boundary (offset 0): contiguous if pa granules meet.
    if (sLen > 0 && off === 0 && sPaG + (sOff + sLen) / G === e.pfn) {
      sLen += chunkEnd - cur;
    } else {
      if (sLen > 0) (done ??= []).push(sIova, sPaG, sOff, sLen);
      sIova = cur;
      sPaG = e.pfn + offG;
      sOff = off - offG * G;
      sLen = chunkEnd - cur;
    }
    if (need === WRITE) {
      domain ??= getDomain(hw, did);
      if (domain.dirtyTracking) {
        pt ??= domain.pt;
        if (pt) pt = markDirty(pt, page);
      }
    }
    cur = chunkEnd;
  }
  if (!faulted && beyond) faulted = { kind: 'not_present', at: top, reason: `iova beyond ${f.iovaBits}-bit ${f.name} reach` };
  // Publish side effects (fills, dirty bits) whether or not the DMA faulted later on.
  let out = hw;
  if (domain && pt && pt !== domain.pt) {
    out = new HwState(out.units, out.domains.set(did, withPt(domain, pt)), out.nextDomain);
  }
  if (tlb !== unit.iotlb) {
    unit = new Unit(unit.name, f, unit.contexts, tlb, unit.faults);
    out = withUnit(out, unit);
  }
  if (faulted) {
    const at = faulted.at === a ? iova : BigInt(faulted.at);
    return fail(out, unit, rid, did, dir, faulted.kind, at, `${faulted.reason} at iova 0x${at.toString(16)}`);
  }
  const last: DmaSegment = { iova: sIova === a ? iova : BigInt(sIova), pa: toBig(sPaG, sOff, G, gs), length: sIova === a && sLen === end - a ? length : BigInt(sLen) };
  if (done === undefined) return { hw: out, result: { ok: true, pa: last.pa, segments: [last] } };
  const segments: DmaSegment[] = [];
  for (let i = 0; i < done.length; i += 4) {
    segments.push({ iova: i === 0 ? iova : BigInt(done[i]!), pa: toBig(done[i + 1]!, done[i + 2]!, G, gs), length: BigInt(done[i + 3]!) });
  }
  segments.push(last);
  return { hw: out, result: { ok: true, pa: segments[0]!.pa, segments } };
}

/** IOTLB invalidation as the caller (the driver model) issues it: all / domain / range. */
export function invalidate(hw: HwState, unitName: string, scope: { domain?: number; iova?: bigint; length?: bigint } = {}): HwState {
  const unit = getUnit(hw, unitName);
  if ((scope.iova !== undefined || scope.length !== undefined) && scope.domain === undefined) {
    throw new Error('range invalidation needs a domain');
  }
  if (scope.length !== undefined && scope.iova === undefined) throw new Error('invalidation length without iova');
  let start: number | undefined;
  let end: number | undefined;
  const { iova, length } = scope;
  if (iova !== undefined) {
    if (length !== undefined && length <= 0n) return hw;
    if (length !== undefined && iova < B53 && length < B53 && Number(iova) + Number(length) <= TWO53) {
      // The usual range, in exact numbers (no bigint arithmetic).
      const G = unit.format.granule;
      const a = Number(iova);
      start = Math.floor(a / G);
      end = Math.floor((a + Number(length) - 1) / G) + 1;
    } else {
      const gs = BigInt(unit.format.granuleShift);
      const last = length === undefined ? U64_END - 1n : iova + length - 1n;
      start = Number(iova >> gs);
      end = Number(last >> gs) + 1;
    }
  }
  const tlb = tlbInvalidate(unit.iotlb, { domain: scope.domain, start, end }, unit.format.spans);
  if (tlb === unit.iotlb) return hw;
  return withUnit(hw, new Unit(unit.name, unit.format, unit.contexts, tlb, unit.faults));
}

/**
 * Unmaps [iova, iova+length) from a domain, then invalidates the unit's IOTLB for that
 * range and domain, as iommu_unmap + iotlb_sync do: the same as domainUnmap followed by
 * invalidate, but the usual range (granule aligned, exact numbers, inside the reach) is
 * converted once and the result is built as one new state.
 */
export function domainUnmapSync(hw: HwState, unitName: string, id: number, iova: bigint, length: bigint): { hw: HwState; unmapped: bigint } {
  const d = getDomain(hw, id);
  const unit = getUnit(hw, unitName);
  const f = unit.format;
  const start = usualRange(f, iova, length);
  if (d.pt === null || d.pt.format !== f || start < 0) {
    const r = domainUnmap(hw, id, iova, length);
    return { hw: invalidate(r.hw, unitName, { domain: id, iova, length }), unmapped: r.unmapped };
  }
  const n = usualGranules(f, length);
  const r = unmapGranules(d.pt, start, start + n);
  const tlb = tlbInvalidateRange(unit.iotlb, id, start, start + n, f.spans);
  const units = tlb === unit.iotlb ? hw.units : unitsWith(hw, new Unit(unit.name, f, unit.contexts, tlb, unit.faults));
  const domains = r.pt === d.pt ? hw.domains : hw.domains.set(id, withPt(d, r.pt));
  // Everything mapped was unmapped (the usual case): the caller's length, no conversion.
  const unmapped = r.granules === n ? length : BigInt(r.granules * f.granule);
  return { hw: units === hw.units && domains === hw.domains ? hw : new HwState(units, domains, hw.nextDomain), unmapped };
}

/** The unit's fault log, oldest first. */
export function faultLog(hw: HwState, unitName: string): FaultRecord[] {
  const out: FaultRecord[] = [];
  for (let l: FaultLog | null = getUnit(hw, unitName).faults; l && l.record; l = l.older) out.push(l.record);
  return out.reverse();
}

export function clearFaults(hw: HwState, unitName: string): HwState {
  const u = getUnit(hw, unitName);
  if (u.faults.count === 0) return hw;
  return withUnit(hw, new Unit(u.name, u.format, u.contexts, u.iotlb, new FaultLog(null, null, 0)));
}
