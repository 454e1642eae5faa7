/*
 * invariants.ts: the isolation and consistency properties of the model, each a pure
 * function of a World (kernel-semantics.md §10), returning violations that name the
 * objects involved. `checkAll` checks a whole World; `checkAfter(prev, next, input)`
 * checks only what one step could have changed (found by comparing the two Worlds'
 * persistent structures by identity), plus the transition properties that need the
 * step itself. A property test proves checkAfter == checkAll after every step of
 * random traces whose previous World was clean.
 *
 * Nothing here changes a World; the hardware is read through hw/'s public checks
 * (domainRuns, iotlbConsistent, contextOf) — the ground truth of what a device reaches.
 */
import type { Input } from '../events/index.js';
import type { Ctx, Group, World } from '../core/index.js';
import type { HwptPagingObj } from '../core/world.js';
import { contextOf, domainRuns, iotlbConsistent, type PtRun } from '../hw/index.js';
import { npinned, physOf, type Pages } from '../core/pages.js';
import type { FrameExtent } from '../core/mem.js';

export const INVARIANTS = {
  'owner-domain':
    '(a) a user-owned group is never in its default domain; a group with bound devices is owned by their iommufd and sits in blocking or a domain of that ctx; ownerCnt counts the claims',
  'no-kernel-driver-in-user-group': '(b) no DMA-API kernel driver is bound to a device of a user-owned group',
  'hw-context-matches-group': "(c) every device's hardware context entry points where its group's domain says",
  reachability:
    "(d) a device's current domain reaches only what its owner may reach: a default domain only kernel frames, a user domain only frames pinned by its ctx, blocked nothing; never a free frame",
  'domain-mirrors-ioas': "(e) a paging HWPT's domain translates exactly its IOAS's areas to their pinned frames with their permissions",
  'iotlb-fresh': '(f) no IOTLB entry disagrees with the page table it caches (no stale translation after an operation)',
  'mapped-frames-pinned': '(g) every frame a domain maps is pinned, unless it is a kernel DMA-API buffer',
  'accounting-balance': "(h) per user locked_vm, per process locked_vm and pinned_vm equal the pins of their pages objects",
  'object-refs': '(i) the object graph has no dangling or inconsistent references (HWPT<->IOAS, device<->HWPT, igroup, pages, files, domains)',
  'single-pin': '(j) each page of a pages object is pinned once, exactly while a user covers it, to its own process frames; frame pin counts add up',
  'copy-shares-pages': '(k) transition: a successful COPY shares the source pages objects and creates none',
  'model-throws': 'the model threw an internal error instead of answering',
} as const;
export type InvariantName = keyof typeof INVARIANTS;
export const TRANSITION_INVARIANTS: readonly InvariantName[] = ['copy-shares-pages'];

export interface Violation {
  readonly invariant: InvariantName;
  readonly message: string;
}

const hex = (n: bigint) => `0x${n.toString(16)}`;
const rng = (a: bigint, len: bigint) => `[${hex(a)}, ${hex(a + len)})`;

/** What a check looks at; `all` everywhere for a full check. */
export interface Scope {
  readonly all: boolean;
  readonly groups: ReadonlySet<number>;
  readonly ctxs: ReadonlySet<number>;
  readonly domains: ReadonlySet<number>;
  readonly units: ReadonlySet<string>;
  readonly accounting: boolean;
  readonly frames: boolean;
  readonly graph: boolean;
}
const ALL: Scope = { all: true, groups: new Set(), ctxs: new Set(), domains: new Set(), units: new Set(), accounting: true, frames: true, graph: true };

type Out = Violation[];
const v = (out: Out, invariant: InvariantName, message: string) => out.push({ invariant, message });

// ---------------------------------------------------------------- helpers

type HwptRef = { ctx: number; hwpt: HwptPagingObj };

/**
 * Memoized derived views. Worlds are persistent values, so a view computed from some
 * of a World's parts holds for every World sharing those parts (by identity): a step
 * that leaves `ctxs` alone does not rebuild the HWPT index, and so on. Two slots are
 * enough for checkAfter, which looks at a step's two Worlds (and the next step's
 * `prev` is this step's `next`). Callers only read the results.
 */
function memo<K extends object, R>(f: (k: K) => R): (k: K) => R {
  let k1: K | undefined, r1: R | undefined, k2: K | undefined, r2: R | undefined;
  return (k) => {
    if (k === k1) return r1!;
    if (k === k2) return r2!;
    const r = f(k);
    k2 = k1, r2 = r1, k1 = k, r1 = r;
    return r;
  };
}
function memo2<A extends object, B extends object, R>(f: (a: A, b: B) => R): (a: A, b: B) => R {
  let a1: A | undefined, b1: B | undefined, r1: R | undefined, a2: A | undefined, b2: B | undefined, r2: R | undefined;
  return (a, b) => {
    if (a === a1 && b === b1) return r1!;
    if (a === a2 && b === b2) return r2!;
    const r = f(a, b);
    a2 = a1, b2 = b1, r2 = r1, a1 = a, b1 = b, r1 = r;
    return r;
  };
}

/** Which HWPT (of which ctx) owns each hardware domain. */
const hwptIndexOf = memo((ctxs: World['ctxs']): Map<number, HwptRef> => {
  const m = new Map<number, HwptRef>();
  for (const c of Object.values(ctxs))
    for (const o of Object.values(c.objects)) if (o.type === 'hwpt_paging') m.set(o.domain, { ctx: c.id, hwpt: o });
  return m;
});
const hwptIndex = (w: World): Map<number, HwptRef> => hwptIndexOf(w.ctxs);

type Domains = World['hw']['domains'];
type DomainOf = Domains extends { get(k: number): infer D | undefined } ? D : never;
/** The hardware domains as an array of [id, domain] (one walk of each persistent map). */
const domainList = memo((ds: Domains): readonly (readonly [number, DomainOf])[] => {
  const out: [number, DomainOf][] = [];
  for (const [id, , d] of ds.entries()) out.push([id as number, d]);
  return out;
});

function pagesOf(c: Ctx): Pages[] {
  const out: Pages[] = [];
  for (const [, p] of c.pages.entries()) out.push(p);
  return out;
}

/** Sorted, merged PA intervals [start, end) pinned by the pages objects of a ctx. */
function pinnedPa(w: World, c: Ctx): [bigint, bigint][] {
  const P = w.platform.pageSize;
  const iv: [bigint, bigint][] = [];
  for (const p of pagesOf(c)) for (const r of p.pinned) iv.push([r.pa, r.pa + BigInt(r.last - r.first + 1) * P]);
  iv.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const merged: [bigint, bigint][] = [];
  for (const x of iv) {
    const last = merged[merged.length - 1];
    if (last && x[0] <= last[1]) {
      if (x[1] > last[1]) last[1] = x[1];
    } else merged.push([x[0], x[1]]);
  }
  return merged;
}

/** The first byte of [pa, end) not covered by sorted merged intervals, or null. */
function firstUncovered(iv: readonly [bigint, bigint][], pa: bigint, end: bigint): bigint | null {
  let cur = pa;
  let lo = 0, hi = iv.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (iv[mid]![1] <= cur) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < iv.length && cur < end; i++) {
    const [s, e] = iv[i]!;
    if (s > cur) return cur;
    if (e > cur) cur = e;
  }
  return cur < end ? cur : null;
}

/** Frame extents meeting [pa, end), plus the first gap (free bytes) if any. */
function framesIn(w: World, pa: bigint, end: bigint): { frames: FrameExtent[]; gap: bigint | null } {
  const frames: FrameExtent[] = [];
  const t = w.mem.frames;
  const first = t.getPairOrNextLower(pa);
  if (first && first[1].pa + first[1].length > pa) frames.push(first[1]);
  t.forRange(pa, end, false, (k, f) => {
    if (k !== first?.[0]) frames.push(f);
  });
  let cur = pa;
  let gap: bigint | null = null;
  for (const f of frames) {
    if (f.pa > cur && gap === null) gap = cur;
    const fe = f.pa + f.length;
    if (fe > cur) cur = fe;
  }
  if (cur < end && gap === null) gap = cur;
  return { frames, gap };
}

/**
 * A domain's runs, memoized by its page table: page tables are persistent values
 * (never written after construction), so an unchanged domain is walked once, not at
 * every step that puts it in scope. Callers only read the array.
 */
const RUNS = new WeakMap<object, readonly PtRun[]>();
export function runsOf(w: World, domain: number): readonly PtRun[] | null {
  const d = w.hw.domains.get(domain);
  if (!d) return null;
  if (!d.pt) return [];
  let r = RUNS.get(d.pt);
  if (r === undefined) {
    r = domainRuns(w.hw, domain);
    RUNS.set(d.pt, r);
  }
  return r;
}

type Bound = { fileId: number; dev: string; ctx: number; devId: number };

/** Every claim on a group: VFIO cdev binds and the selftest's mock devices. */
const boundFilesOf = memo2((files: World['files'], ctxs: World['ctxs']): Bound[] => {
  const out: Bound[] = [];
  for (const f of Object.values(files))
    if (f.kind === 'vfio-cdev' && f.bound) out.push({ fileId: f.id, dev: f.dev, ctx: f.bound.ctx, devId: f.bound.devId });
  for (const c of Object.values(ctxs))
    for (const o of Object.values(c.objects))
      if (o.type === 'selftest' && o.idev !== 0) out.push({ fileId: -1, dev: o.dev, ctx: c.id, devId: o.idev });
  return out;
});
const boundFiles = (w: World): readonly Bound[] => boundFilesOf(w.files, w.ctxs);

/** Per ctx, what holds it alive besides its own file: bound cdevs and selftest access fds. */
const ctxHoldersOf = memo((files: World['files']): Map<number, number> => {
  const m = new Map<number, number>();
  for (const f of Object.values(files)) {
    if (f.kind === 'vfio-cdev' && f.bound) m.set(f.bound.ctx, (m.get(f.bound.ctx) ?? 0) + 1);
    if (f.kind === 'test-access') m.set(f.ctx, (m.get(f.ctx) ?? 0) + 1);
  }
  return m;
});
const ctxHolders = (w: World, ctx: number): number => ctxHoldersOf(w.files).get(ctx) ?? 0;

function describeGroupDomain(g: Group): string {
  const d = g.domain;
  return d.kind === 'hwpt' ? `HWPT ${d.hwpt} of ctx ${d.ctx} (domain ${d.domain})` : d.kind;
}

// ---------------------------------------------------------------- (a) (b) (c)

function checkGroups(w: World, s: Scope, out: Out): void {
  const bound = boundFiles(w);
  for (const g of Object.values(w.groups)) {
    if (!s.all && !s.groups.has(g.id)) continue;
    const members = bound.filter((b) => g.devices.includes(b.dev));
    // (a)
    if (g.owner) {
      if (g.domain.kind === 'default') v(out, 'owner-domain', `group ${g.id} is owned by iommufd ctx ${g.owner.ctx} but sits in its default (DMA-API) domain`);
      if (g.domain.kind === 'hwpt' && g.domain.ctx !== g.owner.ctx)
        v(out, 'owner-domain', `group ${g.id} is owned by ctx ${g.owner.ctx} but uses ${describeGroupDomain(g)}`);
      const claims = members.filter((b) => b.ctx === g.owner!.ctx).length;
      if (claims !== g.ownerCnt) v(out, 'owner-domain', `group ${g.id} has ownerCnt ${g.ownerCnt} but ${claims} devices bound to its owner ctx ${g.owner.ctx}`);
    } else {
      const drivers = g.devices.filter((n) => {
        const drv = w.devices[n]?.driver;
        return drv && drv !== 'vfio-pci' && drv !== 'pci-stub';
      }).length;
      if (g.ownerCnt !== drivers) v(out, 'owner-domain', `group ${g.id} is kernel-owned with ownerCnt ${g.ownerCnt} but ${drivers} DMA-API drivers bound`);
      if (g.domain.kind !== 'default') v(out, 'owner-domain', `group ${g.id} has no owner but is in ${describeGroupDomain(g)}`);
    }
    for (const b of members) {
      if (!g.owner || g.owner.ctx !== b.ctx)
        v(out, 'owner-domain', `${b.dev} is bound to ctx ${b.ctx} but group ${g.id} is ${g.owner ? `owned by ctx ${g.owner.ctx}` : 'not user-owned'}`);
    }
    // (b)
    if (g.owner)
      for (const n of g.devices) {
        const drv = w.devices[n]?.driver;
        if (drv && drv !== 'vfio-pci' && drv !== 'pci-stub')
          v(out, 'no-kernel-driver-in-user-group', `${n} is bound to DMA-API driver ${drv} while group ${g.id} is owned by iommufd ctx ${g.owner.ctx}`);
      }
    // (c)
    const want = g.domain.kind === 'blocking' ? null : g.domain.kind === 'default' ? g.defaultDomain : g.domain.domain;
    for (const n of g.devices) {
      const dev = w.devices[n];
      if (!dev) {
        v(out, 'hw-context-matches-group', `group ${g.id} lists missing device ${n}`);
        continue;
      }
      const ce = contextOf(w.hw, g.unit, n);
      const got = !ce || ce.kind === 'blocked' ? null : ce.domain;
      if (got !== want)
        v(out, 'hw-context-matches-group', `${n}: the hardware context says ${got === null ? 'blocked' : `domain ${got}`}, group ${g.id} says ${describeGroupDomain(g)}${want !== null ? ` (domain ${want})` : ''}`);
    }
  }
}

// ---------------------------------------------------------------- (d) (g)

/**
 * (d) for one domain: every translation reaches only frames the owner may reach.
 * `owner` is 'kernel' for a default domain or a ctx id for an HWPT's domain.
 */
export function reachableWithinOwner(w: World, domain: number, owner: 'kernel' | number): Violation[] {
  const d = w.hw.domains.get(domain);
  if (!d) return [];
  const c = owner === 'kernel' ? null : w.ctxs[owner];
  // A pure function of the domain's page table, the frames and the owner's pages
  // objects (persistent values): remembered per domain until one of them changes.
  const pt = d.pt ?? null, frames = w.mem.frames, pages = c ? c.pages : null;
  const m = REACH.get(domain);
  if (m && m.pt === pt && m.frames === frames && m.pages === pages && m.owner === owner && m.P === w.platform.pageSize) return m.out;
  const out = reachUncached(w, domain, owner);
  REACH.set(domain, { pt, frames, pages, owner, P: w.platform.pageSize, out });
  return out;
}
const REACH = new Map<number, { pt: object | null; frames: object; pages: object | null; owner: 'kernel' | number; P: bigint; out: Violation[] }>();

function reachUncached(w: World, domain: number, owner: 'kernel' | number): Violation[] {
  const out: Out = [];
  const runs = runsOf(w, domain);
  if (!runs) return out;
  const c = owner === 'kernel' ? null : w.ctxs[owner];
  const pinned = c ? pinnedPa(w, c) : [];
  for (const r of runs) {
    const end = r.pa + r.length;
    const { frames, gap } = framesIn(w, r.pa, end);
    const at = () => `domain ${domain} maps IOVA ${rng(r.iova, r.length)} -> PA ${rng(r.pa, r.length)}`;
    if (gap !== null) v(out, 'reachability', `${at()}, which includes free memory at PA ${hex(gap)}`);
    if (owner === 'kernel') {
      const f = frames.find((x) => x.owner.kind !== 'kernel');
      if (f) v(out, 'reachability', `${at()}: a default (DMA-API) domain reaches pid ${f.owner.kind === 'proc' ? f.owner.pid : '?'} memory at PA ${hex(f.pa)}`);
    } else {
      if (!c) {
        v(out, 'reachability', `${at()} for ctx ${owner}, which does not exist`);
        continue;
      }
      const miss = firstUncovered(pinned, r.pa, end);
      if (miss !== null) {
        const who = w.mem.ownerOf(miss);
        const desc = !who ? 'free memory' : who.owner.kind === 'kernel' ? `a kernel buffer of ${who.owner.dev}` : `memory of pid ${who.owner.pid} at VA ${hex(who.owner.va + who.offset)}`;
        v(out, 'reachability', `${at()}: PA ${hex(miss)} is ${desc}, not pinned by ctx ${owner}`);
      }
    }
  }
  return out;
}

/** What checkReach reports whatever the scope: devices whose group is missing. */
function checkDeviceGroups(w: World, out: Out): void {
  for (const dev of Object.values(w.devices)) if (!w.groups[dev.group]) v(out, 'reachability', `${dev.name} belongs to missing group ${dev.group}`);
}

function checkReach(w: World, s: Scope, idx: Map<number, HwptRef>, out: Out): void {
  const seen = new Set<number>();
  for (const dev of Object.values(w.devices)) {
    const g = w.groups[dev.group];
    if (!g) {
      v(out, 'reachability', `${dev.name} belongs to missing group ${dev.group}`);
      continue;
    }
    const ce = contextOf(w.hw, dev.unit, dev.name);
    if (!ce || ce.kind === 'blocked') continue;
    const dom = ce.domain;
    const inScope = s.all || s.domains.has(dom) || s.groups.has(g.id);
    if (dom === g.defaultDomain) {
      if (inScope && !seen.has(dom)) {
        seen.add(dom);
        out.push(...reachableWithinOwner(w, dom, 'kernel'));
      }
      continue;
    }
    const ref = idx.get(dom);
    if (!ref) {
      if (inScope) v(out, 'reachability', `${dev.name} translates through domain ${dom}, neither its group's default domain nor any HWPT's`);
      continue;
    }
    if (!g.owner || g.owner.ctx !== ref.ctx) {
      if (inScope) v(out, 'reachability', `${dev.name} translates through HWPT ${ref.hwpt.id} of ctx ${ref.ctx}, but group ${g.id} is ${g.owner ? `owned by ctx ${g.owner.ctx}` : 'kernel-owned'}`);
      continue;
    }
    if (inScope && !seen.has(dom)) {
      seen.add(dom);
      out.push(...reachableWithinOwner(w, dom, ref.ctx));
    }
  }
}

function checkMappedPinned(w: World, s: Scope, out: Out): void {
  for (const [id, d] of domainList(w.hw.domains)) {
    if (!d.pt) continue;
    if (!s.all && !s.domains.has(id as number)) continue;
    for (const r of runsOf(w, id as number)!) {
      const { frames, gap } = framesIn(w, r.pa, r.pa + r.length);
      if (gap !== null) v(out, 'mapped-frames-pinned', `domain ${id} maps IOVA ${hex(r.iova)} to PA ${hex(gap)}, a freed frame`);
      const re = r.pa + r.length;
      for (const f of frames) {
        if (f.owner.kind !== 'proc') continue;
        const s = f.pa > r.pa ? f.pa : r.pa;
        const fe = f.pa + f.length;
        const e = fe < re ? fe : re;
        const un = firstUncovered(w.mem.pinnedIn(s, e), s, e);
        if (un !== null) v(out, 'mapped-frames-pinned', `domain ${id} maps PA ${hex(un)} of pid ${f.owner.pid} (frames ${rng(f.pa, f.length)}, IOVA run ${hex(r.iova)}), which is not pinned`);
      }
    }
  }
}

// ---------------------------------------------------------------- (e)

/** (e) for one HWPT: its domain's runs equal the IOAS's areas through their pinned pages. */
export function domainMirrorsIoas(w: World, ctxId: number, hwptId: number): Violation[] {
  const out: Out = [];
  const c = w.ctxs[ctxId];
  const h = c?.objects[hwptId];
  if (!c || !h || h.type !== 'hwpt_paging') return out;
  const io = c.objects[h.ioas];
  if (!io || io.type !== 'ioas') return out; // object-refs reports it
  const P = w.platform.pageSize;
  const want: PtRun[] = [];
  for (const e of io.data.areas.entries()) {
    const p = c.pages.get(e.value.pages);
    const len = e.last - e.start + 1n;
    if (!p) continue; // object-refs reports it
    let got = 0n;
    for (const piece of physOf(p, P, e.value.pageOffset, len, e.start)) {
      got += piece.length;
      const run = { ...piece, prot: e.value.prot & 3 };
      const last = want[want.length - 1];
      if (last && last.iova + last.length === run.iova && last.pa + last.length === run.pa && last.prot === run.prot) last.length += run.length;
      else want.push(run);
    }
    if (got !== len) v(out, 'domain-mirrors-ioas', `IOAS ${io.id} of ctx ${ctxId} has domains but area ${rng(e.start, len)} is only ${hex(got)} bytes pinned`);
  }
  const have = runsOf(w, h.domain);
  if (!have) {
    v(out, 'domain-mirrors-ioas', `HWPT ${hwptId} of ctx ${ctxId} names domain ${h.domain}, which the hardware does not have`);
    return out;
  }
  const n = Math.max(want.length, have.length);
  for (let i = 0; i < n; i++) {
    const a = want[i], b = have[i];
    if (a && b && a.iova === b.iova && a.pa === b.pa && a.length === b.length && a.prot === b.prot) continue;
    const fmt = (r: PtRun | undefined) => (r ? `IOVA ${rng(r.iova, r.length)} -> PA ${hex(r.pa)} prot ${r.prot}` : 'nothing');
    v(out, 'domain-mirrors-ioas', `HWPT ${hwptId} (domain ${h.domain}) of ctx ${ctxId} differs from IOAS ${io.id}: the areas give ${fmt(a)}, the domain has ${fmt(b)}`);
    break;
  }
  return out;
}

function checkMirrors(w: World, s: Scope, out: Out): void {
  for (const c of Object.values(w.ctxs))
    for (const o of Object.values(c.objects))
      if (o.type === 'hwpt_paging' && (s.all || s.ctxs.has(c.id) || s.domains.has(o.domain))) out.push(...domainMirrorsIoas(w, c.id, o.id));
}

// ---------------------------------------------------------------- (f)

/** (f): IOTLB entries that disagree with their page tables, optionally for some units. */
export function iotlbFresh(w: World, units?: ReadonlySet<string>): Violation[] {
  const out: Out = [];
  if (units && units.size === 0) return out;
  for (const b of iotlbConsistent(w.hw)) {
    if (units && !units.has(b.unit)) continue;
    v(out, 'iotlb-fresh', `${b.unit}: IOTLB entry of domain ${b.domain} for IOVA ${rng(b.iova, b.pageSize)} -> PA ${hex(b.pa)} is stale (${b.reason})`);
  }
  return out;
}

// ---------------------------------------------------------------- (h)

/** Pins per uid (USER-accounted), per pid (MM-accounted) and per pid (all), over every ctx's pages objects. */
const procKey = (pid: number, serial: number): string => `${pid}/${serial}`;
const pinSums = memo((ctxs: World['ctxs']) => {
  // mm-side sums are per process, not per pid: a pid reused by a new process (serial)
  // starts at 0, while pages of the dead one keep pinning until their areas go.
  const user = new Map<number, number>(), mm = new Map<string, number>(), pin = new Map<string, number>();
  const add = <K>(m: Map<K, number>, k: K, n: number) => m.set(k, (m.get(k) ?? 0) + n);
  for (const c of Object.values(ctxs))
    for (const p of pagesOf(c)) {
      const n = npinned(p);
      const proc = procKey(p.pid, p.serial);
      if (p.account === 'user') add(user, p.uid, n);
      if (p.account === 'mm') add(mm, proc, n);
      add(pin, proc, n);
    }
  return { user, mm, pin };
});
type PinSums = ReturnType<typeof pinSums>;
const userAccounting = memo2((users: World['users'], sums: PinSums): Violation[] => {
  const out: Out = [];
  const uids = new Set([...Object.keys(users).map(Number), ...sums.user.keys()]);
  for (const uid of [...uids].sort((a, b) => a - b)) {
    const have = users[uid]?.lockedPages ?? 0;
    const want = sums.user.get(uid) ?? 0;
    if (have !== want) v(out, 'accounting-balance', `uid ${uid} is charged ${have} locked pages but its pages objects pin ${want}`);
  }
  return out;
});

function checkAccounting(w: World, out: Out): void {
  const sums = pinSums(w.ctxs);
  out.push(...userAccounting(w.users, sums));
  const { mm, pin } = sums;
  for (const p of Object.values(w.procs)) {
    const k = procKey(p.pid, p.serial);
    const wl = mm.get(k) ?? 0, wp = pin.get(k) ?? 0;
    if (p.lockedPages !== wl) v(out, 'accounting-balance', `pid ${p.pid} has locked_vm ${p.lockedPages} pages but its MM-accounted pages pin ${wl}`);
    if (p.pinnedPages !== wp) v(out, 'accounting-balance', `pid ${p.pid} has pinned_vm ${p.pinnedPages} pages but its pages objects pin ${wp}`);
  }
}

// ---------------------------------------------------------------- (i)

function checkCtxGraph(w: World, c: Ctx, out: Out): void {
  const bad = (m: string) => v(out, 'object-refs', `ctx ${c.id}: ${m}`);
  const areaRefs = new Map<number, number>();
  for (const [key, o] of Object.entries(c.objects)) {
    if (Number(key) !== o.id) bad(`object under ID ${key} says it is ${o.id}`);
    switch (o.type) {
      case 'ioas': {
        for (const h of o.data.hwpts) {
          const x = c.objects[h];
          if (!x || x.type !== 'hwpt_paging' || x.ioas !== o.id) bad(`IOAS ${o.id} lists HWPT ${h}, which is not its HWPT`);
        }
        if (new Set(o.data.hwpts).size !== o.data.hwpts.length) bad(`IOAS ${o.id} lists an HWPT twice`);
        for (const e of o.data.areas.entries()) {
          areaRefs.set(e.value.pages, (areaRefs.get(e.value.pages) ?? 0) + 1);
          if (!c.pages.get(e.value.pages)) bad(`area ${hex(e.start)} of IOAS ${o.id} uses missing pages ${e.value.pages}`);
        }
        break;
      }
      case 'hwpt_paging': {
        const io = c.objects[o.ioas];
        if (!io || io.type !== 'ioas' || !io.data.hwpts.includes(o.id)) bad(`HWPT ${o.id} names IOAS ${o.ioas}, which does not list it`);
        const dom = w.hw.domains.get(o.domain);
        if (!dom || dom.unit !== o.unit) bad(`HWPT ${o.id} names domain ${o.domain}, missing or of another unit`);
        const n = Object.values(c.objects).filter((x) => x.type === 'device' && x.attached === o.id).length;
        if (n !== o.devices) bad(`HWPT ${o.id} counts ${o.devices} devices but ${n} are attached`);
        if (o.auto && o.devices === 0) bad(`automatic HWPT ${o.id} outlived its last device`);
        break;
      }
      case 'device': {
        if (!w.devices[o.dev]) bad(`DEVICE ${o.id} is ${o.dev}, which no longer exists`);
        const ig = c.igroups[o.group];
        if (!ig) bad(`DEVICE ${o.id} has no igroup for group ${o.group}`);
        if (o.attached !== null) {
          const h = c.objects[o.attached];
          if (!h || h.type !== 'hwpt_paging') bad(`DEVICE ${o.id} is attached to missing HWPT ${o.attached}`);
          if (ig && (ig.hwpt !== o.attached || !ig.attached.includes(o.id)))
            bad(`DEVICE ${o.id} is attached to HWPT ${o.attached} but its igroup ${o.group} is on ${ig.hwpt ?? 'nothing'} with [${ig.attached.join(', ')}]`);
        }
        break;
      }
      case 'access':
        break;
    }
  }
  for (const p of pagesOf(c)) {
    const n = areaRefs.get(p.id) ?? 0;
    if (n !== p.areas) bad(`pages ${p.id} counts ${p.areas} areas but ${n} use it`);
  }
  for (const ig of Object.values(c.igroups)) {
    for (const id of ig.attached) {
      const o = c.objects[id];
      if (!o || o.type !== 'device' || o.attached !== ig.hwpt || o.group !== ig.group)
        bad(`igroup ${ig.group} lists device ${id} as attached to ${ig.hwpt ?? 'nothing'}, but it is not`);
    }
    if ((ig.hwpt === null) !== (ig.attached.length === 0)) bad(`igroup ${ig.group} has HWPT ${ig.hwpt ?? 'none'} with ${ig.attached.length} attached devices`);
    const g = w.groups[ig.group];
    if (ig.hwpt !== null && g) {
      const h = c.objects[ig.hwpt];
      const dom = h && h.type === 'hwpt_paging' ? h.domain : -1;
      if (g.domain.kind !== 'hwpt' || g.domain.ctx !== c.id || g.domain.hwpt !== ig.hwpt || g.domain.domain !== dom)
        bad(`igroup ${ig.group} is on HWPT ${ig.hwpt} but group ${g.id} is in ${describeGroupDomain(g)}`);
    }
  }
  const f = w.files[c.file];
  const fileOk = f && f.kind === 'iommufd' && f.ctx === c.id;
  const holders = ctxHolders(w, c.id);
  if (!fileOk && c.boundDevices === 0) bad('its file is closed and no bound device holds it, yet it still exists');
  if (holders !== c.boundDevices) bad(`counts ${c.boundDevices} bound devices but ${holders} cdev or access files hold it`);
  for (const b of boundFiles(w).filter((x) => x.ctx === c.id)) {
    const o = c.objects[b.devId];
    if (!o || (o.type === 'device' && o.dev !== b.dev)) bad(`cdev file ${b.fileId} (${b.dev}) is bound as ID ${b.devId}, which is ${o ? `device ${o.type === 'device' ? o.dev : '?'}` : 'missing'}`);
  }
}

/*
 * The global graph checks, each a pure function of a few persistent parts of the
 * World and memoized by their identity: a step that changes only the fd tables does
 * not rescan the hardware domains, and so on.
 */
const leakedDomains = memo2((ds: Domains, parts: { groups: World['groups']; ctxs: World['ctxs'] }): Violation[] => {
  const out: Out = [];
  const idx = hwptIndexOf(parts.ctxs);
  const defaults = new Set(Object.values(parts.groups).map((g) => g.defaultDomain));
  for (const [id] of domainList(ds))
    if (!defaults.has(id) && !idx.has(id)) v(out, 'object-refs', `hardware domain ${id} belongs to no group and no HWPT (leaked)`);
  return out;
});
const boundToMissing = memo2((files: World['files'], ctxs: World['ctxs']): Violation[] => {
  const out: Out = [];
  for (const b of boundFilesOf(files, ctxs)) if (!ctxs[b.ctx]) v(out, 'object-refs', `cdev file ${b.fileId} (${b.dev}) is bound to missing ctx ${b.ctx}`);
  return out;
});
const fileRefs = memo2((procs: World['procs'], files: World['files']): Violation[] => {
  const out: Out = [];
  const refs = new Map<number, number>();
  for (const p of Object.values(procs)) for (const f of Object.values(p.fds)) refs.set(f, (refs.get(f) ?? 0) + 1);
  for (const f of Object.values(files)) {
    const n = refs.get(f.id) ?? 0;
    if (n !== f.refs) v(out, 'object-refs', `open file ${f.id} (${f.kind}) counts ${f.refs} fds but ${n} refer to it`);
  }
  for (const p of Object.values(procs))
    for (const [fd, f] of Object.entries(p.fds)) if (!files[f]) v(out, 'object-refs', `pid ${p.pid} fd ${fd} refers to missing file ${f}`);
  return out;
});
/** One key object per (groups, ctxs) pair, so leakedDomains can memoize on it. */
const groupsCtxs = memo2((groups: World['groups'], ctxs: World['ctxs']) => ({ groups, ctxs }));

function checkGlobalGraph(w: World, out: Out): void {
  out.push(...leakedDomains(w.hw.domains, groupsCtxs(w.groups, w.ctxs)));
  out.push(...boundToMissing(w.files, w.ctxs));
  out.push(...fileRefs(w.procs, w.files));
}

// ---------------------------------------------------------------- (j)

function checkPagesPins(w: World, c: Ctx, out: Out): void {
  const P = w.platform.pageSize;
  for (const p of pagesOf(c)) {
    const at = () => `ctx ${c.id} pages ${p.id} (pid ${p.pid} VA ${hex(p.va)})`;
    let prev = -1;
    for (const r of p.pinned) {
      if (r.first > r.last || r.first <= prev || r.last >= p.npages) v(out, 'single-pin', `${at()}: pinned run [${r.first}, ${r.last}] overlaps another or leaves [0, ${p.npages})`);
      prev = r.last;
      const { frames, gap } = framesIn(w, r.pa, r.pa + BigInt(r.last - r.first + 1) * P);
      if (gap !== null) v(out, 'single-pin', `${at()}: pinned pages [${r.first}, ${r.last}] include freed PA ${hex(gap)}`);
      for (const f of frames) {
        // Compare at the first byte both the run and the (possibly merged) extent cover.
        const at0 = f.pa > r.pa ? f.pa : r.pa;
        const va = p.va + BigInt(r.first) * P + (at0 - r.pa);
        const ownerVa = f.owner.kind === 'proc' ? f.owner.va + (at0 - f.pa) : -1n;
        const pins = w.mem.pinsAt(at0);
        if (f.owner.kind !== 'proc' || f.owner.pid !== p.pid || ownerVa !== va || pins < 1)
          v(out, 'single-pin', `${at()}: pinned PA ${hex(f.pa)} is ${f.owner.kind === 'proc' ? `pid ${f.owner.pid} VA ${hex(f.owner.va)}` : 'kernel memory'} with ${pins} pins, not its own page at VA ${hex(va)}`);
      }
    }
    // Pinned exactly where some user covers.
    const cover: [number, number][] = p.users.map((u) => [u.first, u.last] as [number, number]).sort((a, b) => a[0] - b[0]);
    const merged: [number, number][] = [];
    for (const x of cover) {
      const l = merged[merged.length - 1];
      if (l && x[0] <= l[1] + 1) l[1] = Math.max(l[1], x[1]);
      else merged.push([x[0], x[1]]);
    }
    const runs: [number, number][] = [];
    for (const r of p.pinned) {
      const l = runs[runs.length - 1];
      if (l && r.first === l[1] + 1) l[1] = r.last;
      else runs.push([r.first, r.last]);
    }
    if (merged.length !== runs.length || merged.some((m, i) => m[0] !== runs[i]![0] || m[1] !== runs[i]![1]))
      v(out, 'single-pin', `${at()}: pinned ${JSON.stringify(runs)} but its users cover ${JSON.stringify(merged)}`);
  }
}

/**
 * The memory's pin index holds exactly the pinned runs of all pages objects (over all
 * ctxs), so every frame's pin count equals the number of pinned runs covering it;
 * frames kept after munmap (unmapped) are pinned throughout.
 */
function checkFramePins(w: World, out: Out): void {
  const P = w.platform.pageSize;
  const key = (pa: bigint, len: bigint) => `${hex(pa)}+${hex(len)}`;
  const want = new Map<string, number>();
  for (const c of Object.values(w.ctxs))
    for (const p of pagesOf(c))
      for (const r of p.pinned) {
        const k = key(r.pa, BigInt(r.last - r.first + 1) * P);
        want.set(k, (want.get(k) ?? 0) + 1);
      }
  const have = new Map<string, number>();
  for (const [pa, lens] of w.mem.pins.entries())
    for (const l of lens) {
      const k = key(BigInt(pa), BigInt(l));
      have.set(k, (have.get(k) ?? 0) + 1);
      if (l > w.mem.maxPin) v(out, 'single-pin', `pinned run ${k} is longer than the pin index's bound ${hex(BigInt(w.mem.maxPin))}`);
    }
  for (const [k, n] of have) if (want.get(k) !== n) v(out, 'single-pin', `PA run ${k} has ${n} pins but ${want.get(k) ?? 0} pages objects pin it`);
  for (const [k, n] of want) if (!have.has(k)) v(out, 'single-pin', `PA run ${k} has 0 pins but ${n} pages objects pin it`);
  for (const [, f] of w.mem.frames.entries()) {
    if (f.mapped) continue;
    const un = firstUncovered(w.mem.pinnedIn(f.pa, f.pa + f.length), f.pa, f.pa + f.length);
    if (un !== null) v(out, 'single-pin', `frame PA ${rng(f.pa, f.length)} is kept after munmap but PA ${hex(un)} is not pinned`);
  }
}

// ---------------------------------------------------------------- entry points

/** Checks a World (everything, or what `scope` names). */
export function checkWorld(w: World, scope: Scope = ALL): Violation[] {
  const out: Out = [];
  const idx = hwptIndex(w);
  // Each check below looks only at the groups, domains, ctxs or units in scope; when
  // its sets are empty it would find nothing, so it is not run at all.
  const groups = scope.all || scope.groups.size > 0, domains = scope.all || scope.domains.size > 0, ctxs = scope.all || scope.ctxs.size > 0;
  if (groups) checkGroups(w, scope, out);
  if (groups || domains) checkReach(w, scope, idx, out);
  else checkDeviceGroups(w, out);
  if (ctxs || domains) checkMirrors(w, scope, out);
  out.push(...iotlbFresh(w, scope.all ? undefined : scope.units));
  if (scope.accounting) checkAccounting(w, out);
  if (ctxs)
    for (const c of Object.values(w.ctxs)) {
      if (!scope.all && !scope.ctxs.has(c.id)) continue;
      checkCtxGraph(w, c, out);
      checkPagesPins(w, c, out);
    }
  if (scope.graph) checkGlobalGraph(w, out);
  if (scope.frames) checkFramePins(w, out);
  if (domains) checkMappedPinned(w, scope, out);
  return out;
}

export function checkAll(w: World): Violation[] {
  return checkWorld(w, ALL);
}

/** What a step from `prev` to `next` could have broken (found by identity of persistent parts). */
export function scopeOf(prev: World, next: World): Scope {
  const groups = new Set<number>(), ctxs = new Set<number>(), domains = new Set<number>(), units = new Set<string>();
  if (prev.groups !== next.groups) for (const [k, g] of Object.entries(next.groups)) if (prev.groups[Number(k)] !== g) groups.add(g.id);
  if (prev.devices !== next.devices) for (const [n, d] of Object.entries(next.devices)) if (prev.devices[n] !== d) groups.add(d.group);
  const filesChanged = prev.files !== next.files;
  if (filesChanged)
    for (const f of Object.values(next.files)) if (f.kind === 'vfio-cdev' && prev.files[f.id] !== f && next.devices[f.dev]) groups.add(next.devices[f.dev]!.group);
  // Pages objects (what accounting and the frame pins read) changed in some ctx.
  let pagesChanged = false;
  if (prev.ctxs !== next.ctxs) for (const [k, c] of Object.entries(next.ctxs)) {
    const pc = prev.ctxs[Number(k)];
    if (pc === c) continue;
    if (!pc || pc.pages !== c.pages) pagesChanged = true;
    ctxs.add(c.id);
    for (const o of Object.values(c.objects)) {
      if (o.type === 'hwpt_paging') domains.add(o.domain);
      if (o.type === 'device') groups.add(o.group);
    }
    for (const ig of Object.values(c.igroups)) groups.add(ig.group);
  }
  if (prev.hw !== next.hw) {
    for (const [id, d] of domainList(next.hw.domains)) if (prev.hw.domains.get(id) !== d) {
      domains.add(id as number);
      units.add(d.unit);
    }
    for (const [id, d] of domainList(prev.hw.domains)) if (!next.hw.domains.get(id)) units.add(d.unit);
    for (const u of next.hw.units) {
      const pu = prev.hw.units.find((x) => x.name === u.name);
      if (pu === u) continue;
      units.add(u.name);
      if (!pu || pu.contexts !== u.contexts) for (const g of Object.values(next.groups)) if (g.unit === u.name) groups.add(g.id);
    }
  }
  for (const gid of groups) {
    const g = next.groups[gid];
    if (g) domains.add(g.defaultDomain);
    if (g && g.domain.kind === 'hwpt') domains.add(g.domain.domain);
  }
  if (!pagesChanged && prev.ctxs !== next.ctxs) for (const k of Object.keys(prev.ctxs)) if (!next.ctxs[Number(k)]) pagesChanged = true;
  const framesChanged = prev.mem.frames !== next.mem.frames || prev.mem.pins !== next.mem.pins;
  return {
    all: false, groups, ctxs, domains, units,
    accounting: pagesChanged || prev.procs !== next.procs || prev.users !== next.users,
    frames: framesChanged || pagesChanged,
    graph: prev.ctxs !== next.ctxs || prev.groups !== next.groups || prev.hw.domains !== next.hw.domains || filesChanged || prev.procs !== next.procs,
  };
}

function ctxOfInput(w: World, input: Input): number | null {
  const fd = (input.f as { fd?: number }).fd;
  if (fd === undefined) return null;
  const fileId = w.procs[input.pid]?.fds[fd];
  const f = fileId === undefined ? undefined : w.files[fileId];
  return f && f.kind === 'iommufd' ? f.ctx : null;
}

/** Properties of one step that no single World shows. */
export function checkTransition(prev: World, next: World, input: Input): Violation[] {
  const out: Out = [];
  if (input.op === 'IOMMU_IOAS_COPY' && next !== prev) {
    const id = ctxOfInput(prev, input);
    const a = id === null ? undefined : prev.ctxs[id];
    const b = id === null ? undefined : next.ctxs[id];
    if (a && b && b.nextPages !== a.nextPages)
      v(out, 'copy-shares-pages', `COPY in ctx ${id} created ${b.nextPages - a.nextPages} new pages objects instead of sharing the source's`);
  }
  return out;
}

/** Incremental check of one step: the state properties it could have broken, plus transition properties. */
export function checkAfter(prev: World, next: World, input: Input): Violation[] {
  if (prev === next) return [];
  return [...checkWorld(next, scopeOf(prev, next)), ...checkTransition(prev, next, input)];
}
