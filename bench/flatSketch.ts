/*
 * bench/flatSketch.ts: `node dist/bench/flatSketch.js TRACE` (a vm-churn trace, e.g. from
 * `iommufd-sim gen vm-churn --entries 200000 --seed 1`).
 *
 * A measurement, not the model: what vm-churn's data-plane work costs per entry when its
 * state lives in flat, mutable number arrays instead of the model's persistent object
 * graph. It sizes the rewrite the speed target of issue 3 needs (docs/decisions.md,
 * Engine: "Where replay time goes").
 *
 * It does the same work as the model's MAP, UNMAP and DMA on vm-churn's one IOAS and one
 * shared domain: an overlap check against the areas (sorted arrays), the source
 * process's page extents with frames allocated per gap exactly as core/mem.ts places
 * them, one pin per run in a PA-keyed count, a 4-level radix table with 4K leaves in
 * Float64Arrays and 2 MiB leaves where iova and PA allow, an IOTLB invalidated on
 * unmap, and the DMA's owner found among the frames. It skips what vm-churn never
 * exercises (errno paths, reserved and allowed ranges, accounting modes, other ops).
 *
 * Inputs are parsed, resolved and stepped through the model first (the model's outcomes
 * are what each DMA is checked against); only the flat loop is timed, as CPU time. Exit
 * status 1 when a DMA's PA or VA differs from the model's.
 */
import * as fs from 'node:fs';
import { isTraceError, matchExpect, parseEntryLine, parseHeaderLine, resolveEntry, type Bindings, type Input, type Outcome, type TraceError } from '../events/index.js';
import { inPlaceStep, initialWorld, resolvePlatform, setFreeze } from '../core/index.js';

const GiB = 2 ** 30;
const M2 = 2 ** 21;
const P = 4096;

// The sketch keeps its own two search loops rather than hw/sorted's `sortedBound`: that
// one, shared with the model's hot paths (already run in this process) and choosing its
// comparison by a flag, made the sketch 1.9 -> 2.6 µs per entry (measured), which would
// misstate the bound this file exists to give.

/** Lower bound in a sorted array: first index with a[i] >= x. */
function lb(a: number[], x: number): number {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    if (a[m]! < x) lo = m + 1;
    else hi = m;
  }
  return lo;
}

/** Upper bound: first index with a[i] > x. */
function ub(a: number[], x: number): number {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    if (a[m]! <= x) lo = m + 1;
    else hi = m;
  }
  return lo;
}

type Level = (Level | Float64Array | number | null)[];

class FlatPlane {
  private nextPa = 2 ** 32;
  // The process's page extents, sorted by VA (parallel arrays).
  private readonly exVa: number[] = [];
  private readonly exLen: number[] = [];
  private readonly exPa: number[] = [];
  // Frames by PA, with the VA each starts at (one owner: the VM).
  private readonly frPa: number[] = [];
  private readonly frVa: number[] = [];
  // Areas by IOVA: first, last (inclusive) and their pinned runs [pa, length, ...].
  private readonly arS: number[] = [];
  private readonly arL: number[] = [];
  private readonly arPin: number[][] = [];
  private readonly pins = new Map<number, number>();
  private readonly root: Level = new Array(512).fill(null);
  private readonly tlb = new Map<number, number>();

  private alloc(len: number, va: number): number {
    const mod = len >= GiB ? GiB : M2;
    let pa = this.nextPa;
    pa += ((va % mod) - (pa % mod) + mod) % mod;
    this.nextPa = pa + len;
    const i = lb(this.frPa, pa);
    this.frPa.splice(i, 0, pa);
    this.frVa.splice(i, 0, va);
    return pa;
  }

  /** [va, va+len) as [va, pa, length] pieces, frames allocated for the gaps. */
  private touch(va: number, len: number): number[] {
    const end = va + len;
    const out: number[] = [];
    const { exVa, exLen, exPa } = this;
    let i = ub(exVa, va) - 1;
    if (i < 0 || exVa[i]! + exLen[i]! <= va) i++;
    for (let cur = va; cur < end; i++) {
      if (i < exVa.length && exVa[i]! <= cur) {
        const e = Math.min(end, exVa[i]! + exLen[i]!);
        out.push(cur, exPa[i]! + (cur - exVa[i]!), e - cur);
        cur = e;
        continue;
      }
      const gapEnd = Math.min(end, i < exVa.length ? exVa[i]! : end);
      const pa = this.alloc(gapEnd - cur, cur);
      exVa.splice(i, 0, cur);
      exLen.splice(i, 0, gapEnd - cur);
      exPa.splice(i, 0, pa);
      out.push(cur, pa, gapEnd - cur);
      cur = gapEnd;
    }
    return out;
  }

  private table(iova: number): Level {
    const i0 = Math.floor(iova / 2 ** 39) % 512;
    const i1 = Math.floor(iova / GiB) % 512;
    const l1 = (this.root[i0] ??= new Array(512).fill(null)) as Level;
    return (l1[i1] ??= new Array(512).fill(null)) as Level;
  }

  private ptMap(iova: number, pa: number, len: number): void {
    while (len > 0) {
      const l2 = this.table(iova);
      const i2 = Math.floor(iova / M2) % 512;
      if (iova % M2 === 0 && pa % M2 === 0 && len >= M2) {
        if (l2[i2] !== null) throw new Error('overlap');
        l2[i2] = (pa / P) * 8 + 3;
        iova += M2, pa += M2, len -= M2;
        continue;
      }
      const l3 = (l2[i2] ??= new Float64Array(512)) as Float64Array;
      let j = Math.floor(iova / P) % 512;
      const n = Math.min(len / P, 512 - j);
      for (let k = 0, v = (pa / P) * 8 + 3; k < n; k++, j++, v += 8) {
        if (l3[j] !== 0) throw new Error('overlap');
        l3[j] = v;
      }
      iova += n * P, pa += n * P, len -= n * P;
    }
  }

  private ptUnmap(iova: number, len: number): void {
    while (len > 0) {
      const l2 = this.table(iova);
      const i2 = Math.floor(iova / M2) % 512;
      const s = l2[i2];
      if (typeof s === 'number') {
        l2[i2] = null;
        iova += M2, len -= M2;
        continue;
      }
      let j = Math.floor(iova / P) % 512;
      const n = Math.min(len / P, 512 - j);
      (s as Float64Array).fill(0, j, j + n);
      if (n === 512) l2[i2] = null; // the model frees an emptied table page
      iova += n * P, len -= n * P;
    }
  }

  private walk(iova: number): number {
    const l1 = this.root[Math.floor(iova / 2 ** 39) % 512] as Level | null;
    const l2 = l1?.[Math.floor(iova / GiB) % 512] as Level | null | undefined;
    const s = l2?.[Math.floor(iova / M2) % 512];
    if (s === null || s === undefined) return -1;
    if (typeof s === 'number') return ((s - (s % 8)) / 8) * P + (iova % M2);
    const v = (s as Float64Array)[Math.floor(iova / P) % 512]!;
    return v === 0 ? -1 : ((v - (v % 8)) / 8) * P + (iova % P);
  }

  map(iova: number, len: number, va: number): void {
    const i = lb(this.arS, iova);
    if ((i > 0 && this.arL[i - 1]! >= iova) || (i < this.arS.length && this.arS[i]! <= iova + len - 1)) throw new Error('EEXIST');
    const pieces = this.touch(va, len);
    const runs: number[] = [];
    for (let k = 0; k < pieces.length; k += 3) {
      const pa = pieces[k + 1]!, l = pieces[k + 2]!;
      runs.push(pa, l);
      this.pins.set(pa, (this.pins.get(pa) ?? 0) + 1);
      this.ptMap(iova + (pieces[k]! - va), pa, l);
    }
    this.arS.splice(i, 0, iova);
    this.arL.splice(i, 0, iova + len - 1);
    this.arPin.splice(i, 0, runs);
  }

  unmap(iova: number, len: number): number {
    const { arS, arL, arPin, tlb } = this;
    const i = lb(arS, iova);
    const last = iova + len - 1;
    let j = i;
    let bytes = 0;
    for (; j < arS.length && arL[j]! <= last; j++) {
      const s = arS[j]!, l = arL[j]! - s + 1;
      this.ptUnmap(s, l);
      bytes += l;
      const a = s / P, b = arL[j]! / P;
      if (b - a < 32) for (let x = a; x <= b; x++) tlb.delete(x);
      else for (const key of tlb.keys()) if (key >= a && key <= b) tlb.delete(key);
      const runs = arPin[j]!;
      for (let r = 0; r < runs.length; r += 2) {
        const c = this.pins.get(runs[r]!)! - 1;
        if (c) this.pins.set(runs[r]!, c);
        else this.pins.delete(runs[r]!);
      }
    }
    arS.splice(i, j - i);
    arL.splice(i, j - i);
    arPin.splice(i, j - i);
    return bytes;
  }

  /** The DMA's PA and the owner's VA there, or null (not present). */
  dma(iova: number): { pa: number; va: number } | null {
    const page = Math.floor(iova / P);
    let pa = this.tlb.get(page);
    if (pa === undefined) {
      const t = this.walk(iova);
      if (t < 0) return null;
      pa = t - (t % P);
      if (this.tlb.size >= 512) this.tlb.clear();
      this.tlb.set(page, pa);
    }
    pa += iova % P;
    const f = ub(this.frPa, pa) - 1;
    return { pa, va: this.frVa[f]! + (pa - this.frPa[f]!) };
  }
}

/** Throws on a trace the sketch cannot read (it measures; it does not report). */
function must<T>(x: T | TraceError): T {
  if (isTraceError(x)) throw new Error(`line ${x.line}${x.field ? ` field ${x.field}` : ''}: ${x.message}`);
  return x;
}

export interface SketchResult {
  readonly entries: number;
  /** CPU time of the flat loop alone. */
  readonly ms: number;
  /** DMAs that reached memory in the model, and how many of them the sketch got wrong. */
  readonly checked: number;
  readonly differ: number;
}

/** Steps the trace through the model (with freezing off), then times the flat loop. */
export function sketch(lines: readonly string[]): SketchResult {
  const header = must(parseHeaderLine(lines[0]!, 1));
  const platform = resolvePlatform(header.platform);
  if (!platform.ok) throw new Error(platform.message);
  let w = initialWorld(platform.platform);
  const step = inPlaceStep();
  const vars: Bindings = new Map();
  const inputs: Input[] = [];
  const model: Outcome[] = [];
  for (let i = 1; i < lines.length; i++) {
    const e = must(parseEntryLine(lines[i]!, i + 1));
    const input = must(resolveEntry(e, vars));
    const r = step(w, input);
    w = r.world;
    if (e.expect) matchExpect(e.expect, r.outcome, vars);
    inputs.push(input);
    model.push(r.outcome);
  }
  const plane = new FlatPlane();
  let checked = 0;
  let bad = 0;
  const t0 = process.cpuUsage();
  for (let n = 0; n < inputs.length; n++) {
    const input = inputs[n]!;
    if (input.op === 'IOMMU_IOAS_MAP') plane.map(Number(input.f.iova), Number(input.f.length), Number(input.f.user_va));
    else if (input.op === 'IOMMU_IOAS_UNMAP') plane.unmap(Number(input.f.iova), Number(input.f.length));
    else if (input.op === 'dma') {
      const r = plane.dma(Number(input.f.iova));
      const o = model[n]!;
      if (o.kind === 'ok') {
        checked++;
        if (!r || BigInt(r.pa) !== o.out.pa || BigInt(r.va) !== o.out.va) bad++;
      } else if (r) bad++;
    }
  }
  const t = process.cpuUsage(t0);
  return { entries: inputs.length, ms: (t.user + t.system) / 1000, checked, differ: bad };
}

function main(file: string): number {
  setFreeze(false);
  const r = sketch(fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== ''));
  console.log(`flat sketch: ${r.entries} entries in ${r.ms.toFixed(0)} ms of CPU, ${((r.ms * 1000) / r.entries).toFixed(2)} µs per entry (${(r.entries / r.ms).toFixed(0)}k entries/s); ${r.checked} DMAs checked against the model, ${r.differ} differ`);
  return r.differ === 0 ? 0 : 1;
}

// Run only as the script (the test imports `sketch`).
if (process.argv[1]?.endsWith('flatSketch.js')) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node dist/bench/flatSketch.js VM_CHURN_TRACE');
    process.exit(2);
  }
  process.exit(main(file));
}
