// HwState: IOMMU units (format, context table, IOTLB, fault log) and the domains they
// translate through. Every operation returns a new HwState sharing all untouched parts;
// a HwState is never written after construction (a page table of an open in-place
// epoch is, see hw/own.ts: an op that wrote it in place returns the same HwState). Domain ids are global and sequential
// (1, 2, 3, ...) and never reused, so IOTLB entries of a freed domain can never hit.
// setContext takes effect at once: no context-cache is modelled, but IOTLB entries are
// tagged by domain, so a device moved to another domain never sees the old domain's.
// Invariants: every context entry names a live domain of its own unit; units are kept
// sorted by name; a paging domain has a page table, a blocking one has none.

import { FORMATS, FormatName, PtFormat, depthsForSizes, sizesForDepths } from './format.js';
import { Iotlb, emptyIotlb } from './iotlb.js';
import { PageTable, emptyTable, map as ptMap, mapRuns as ptMapRuns, type MapRun, unmap as ptUnmap } from './pagetable.js';
import { PMap } from './pmap.js';
import { DirtyRange, clearAllDirty, markDirty, readDirty as ptReadDirty } from './ptiter.js';

export type ContextEntry = { readonly kind: 'blocked' } | { readonly kind: 'domain'; readonly domain: number };

export type FaultKind = 'blocked' | 'not_present' | 'permission';

export interface FaultRecord {
  /** Position in the unit's log, from 0. */
  readonly seq: number;
  readonly unit: string;
  readonly rid: string;
  /** Domain the context pointed at, if any. */
  readonly domain: number | null;
  readonly dir: 'read' | 'write';
  readonly fault: FaultKind;
  /** First faulting byte. */
  readonly iova: bigint;
  readonly reason: string;
}

/** Persistent append-only list, newest first: appending shares the whole old log. */
export class FaultLog {
  constructor(
    readonly record: FaultRecord | null,
    readonly older: FaultLog | null,
    readonly count: number,
  ) {}
}

export const EMPTY_FAULT_LOG = new FaultLog(null, null, 0);

export class Unit {
  constructor(
    readonly name: string,
    readonly format: PtFormat,
    readonly contexts: PMap<ContextEntry>,
    readonly iotlb: Iotlb,
    readonly faults: FaultLog,
  ) {}
}

export type DomainKind = 'paging' | 'blocking';

export class Domain {
  constructor(
    readonly id: number,
    readonly unit: string,
    readonly kind: DomainKind,
    readonly pt: PageTable | null,
    readonly dirtyTracking: boolean,
  ) {}

  /** Allowed leaf sizes (0n for a blocking domain). */
  get pageSizes(): bigint {
    return this.pt ? sizesForDepths(this.pt.format, this.pt.allowedDepths) : 0n;
  }
}

export class HwState {
  constructor(
    readonly units: readonly Unit[],
    readonly domains: PMap<Domain>,
    readonly nextDomain: number,
  ) {}
}

export const EMPTY_HW = new HwState(Object.freeze([]), PMap.empty(), 1);

export function getUnit(hw: HwState, name: string): Unit {
  for (const u of hw.units) if (u.name === name) return u;
  throw new Error(`no IOMMU unit ${name}`);
}

export function getDomain(hw: HwState, id: number): Domain {
  const d = hw.domains.get(id);
  if (!d) throw new Error(`no domain ${id}`);
  return d;
}

/** hw's units with `unit` in place of the one of its name. */
export function unitsWith(hw: HwState, unit: Unit): Unit[] {
  // A plain copy, not frozen: V8 copies a frozen array several times slower, and the
  // units array is copied on every IOTLB fill.
  const units = hw.units.slice();
  for (let i = 0; i < units.length; i++) if (units[i]!.name === unit.name) units[i] = unit;
  return units;
}

export function withUnit(hw: HwState, unit: Unit): HwState {
  return new HwState(unitsWith(hw, unit), hw.domains, hw.nextDomain);
}

export function withDomain(hw: HwState, d: Domain): HwState {
  return new HwState(hw.units, hw.domains.set(d.id, d), hw.nextDomain);
}

export function addUnit(hw: HwState, name: string, format: FormatName | PtFormat, opts: { iotlbCapacity?: number } = {}): HwState {
  if (hw.units.some((u) => u.name === name)) throw new Error(`IOMMU unit ${name} exists`);
  const f = typeof format === 'string' ? FORMATS[format] : format;
  if (!f) throw new Error(`unknown format ${String(format)}`);
  const unit = new Unit(name, f, PMap.empty(), emptyIotlb(opts.iotlbCapacity), EMPTY_FAULT_LOG);
  const units = [...hw.units, unit].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return new HwState(units, hw.domains, hw.nextDomain);
}

export interface DomainOptions {
  /** Subset of the format's page sizes; default all of them. */
  pageSizes?: bigint;
  /** false = smallest page size only (e.g. mock without MOCK_FLAGS_DEVICE_HUGE_IOVA). */
  hugePages: boolean;
  kind?: DomainKind;
}

export function allocDomain(hw: HwState, unitName: string, opts: DomainOptions): { hw: HwState; domain: number } {
  const unit = getUnit(hw, unitName);
  const f = unit.format;
  const id = hw.nextDomain;
  let pt: PageTable | null = null;
  if ((opts.kind ?? 'paging') === 'paging') {
    let sizes = opts.pageSizes ?? f.pageSizes;
    if (!opts.hugePages) sizes &= 1n << BigInt(f.granuleShift);
    pt = emptyTable(f, depthsForSizes(f, sizes));
  }
  const d = new Domain(id, unitName, opts.kind ?? 'paging', pt, false);
  return { hw: new HwState(hw.units, hw.domains.set(id, d), id + 1), domain: id };
}

export function freeDomain(hw: HwState, id: number): HwState {
  const d = getDomain(hw, id);
  for (const [rid, , e] of getUnit(hw, d.unit).contexts.entries()) {
    if (e.kind === 'domain' && e.domain === id) throw new Error(`domain ${id} still used by ${String(rid)}`);
  }
  return new HwState(hw.units, hw.domains.delete(id), hw.nextDomain);
}

/** Installs (or with null removes: absent = blocked) the context entry of a device. */
export function setContext(hw: HwState, unitName: string, rid: string, entry: ContextEntry | null): HwState {
  const unit = getUnit(hw, unitName);
  if (entry && entry.kind === 'domain') {
    const d = getDomain(hw, entry.domain);
    if (d.unit !== unitName) throw new Error(`domain ${entry.domain} belongs to unit ${d.unit}, not ${unitName}`);
  }
  const contexts = entry ? unit.contexts.set(rid, Object.freeze({ ...entry })) : unit.contexts.delete(rid);
  if (contexts === unit.contexts) return hw;
  return withUnit(hw, new Unit(unit.name, unit.format, contexts, unit.iotlb, unit.faults));
}

export function contextOf(hw: HwState, unitName: string, rid: string): ContextEntry | undefined {
  return getUnit(hw, unitName).contexts.get(rid);
}

function pagingTable(d: Domain): PageTable {
  if (!d.pt) throw new Error(`domain ${d.id} is blocking: it has no page table`);
  return d.pt;
}

export const withPt = (d: Domain, pt: PageTable): Domain => new Domain(d.id, d.unit, d.kind, pt, d.dirtyTracking);

/** Maps [iova, iova+length) to pa. Does NOT invalidate the IOTLB. Overlap is a bug: throws. */
export function domainMap(hw: HwState, id: number, iova: bigint, pa: bigint, length: bigint, prot: number): HwState {
  const d = getDomain(hw, id);
  const pt = ptMap(pagingTable(d), iova, pa, length, prot);
  // The same table: written in place (hw/own.ts).
  return pt === d.pt ? hw : withDomain(hw, withPt(d, pt));
}

/** Maps several runs in one page-table operation (pagetable.mapRuns). Does NOT invalidate the IOTLB. */
export function domainMapRuns(hw: HwState, id: number, runs: readonly MapRun[], prot: number): HwState {
  const d = getDomain(hw, id);
  const pt = ptMapRuns(pagingTable(d), runs, prot);
  return pt === d.pt ? hw : withDomain(hw, withPt(d, pt));
}

/** Unmaps (splitting huge leaves at the edges). Does NOT invalidate the IOTLB. */
export function domainUnmap(hw: HwState, id: number, iova: bigint, length: bigint): { hw: HwState; unmapped: bigint } {
  const d = getDomain(hw, id);
  const r = ptUnmap(pagingTable(d), iova, length);
  return { hw: r.pt === d.pt ? hw : withDomain(hw, withPt(d, r.pt)), unmapped: r.unmapped };
}

/** Enabling clears every DIRTY bit first, as iommufd's set_dirty_tracking does. */
export function setDirtyTracking(hw: HwState, id: number, enabled: boolean): HwState {
  const d = getDomain(hw, id);
  const pt = pagingTable(d);
  if (d.dirtyTracking === enabled) return hw;
  return withDomain(hw, new Domain(d.id, d.unit, d.kind, enabled ? clearAllDirty(pt) : pt, enabled));
}

/**
 * Sets the dirty bit of the leaf translating `iova`, as a device write would (a test
 * driver's set_dirty); read-only leaves included. Same state when unmapped or clean.
 */
export function domainMarkDirty(hw: HwState, id: number, iova: bigint): HwState {
  const d = getDomain(hw, id);
  const pt = pagingTable(d);
  const next = markDirty(pt, Number(iova >> BigInt(pt.format.granuleShift)));
  return next === pt ? hw : withDomain(hw, withPt(d, next));
}

export function domainReadDirty(hw: HwState, id: number, iova: bigint, length: bigint, pageSize: bigint, clear: boolean): { hw: HwState; dirty: DirtyRange[] } {
  const d = getDomain(hw, id);
  const r = ptReadDirty(pagingTable(d), iova, length, pageSize, clear);
  return { hw: r.pt === d.pt ? hw : withDomain(hw, withPt(d, r.pt)), dirty: r.dirty };
}
