/*
 * arbitraries.ts: trace entries generated FROM THE CURRENT STATE. fast-check draws a
 * list of "choices" (tuples of small integers); `nextTemplate` turns one choice into
 * one trace entry by looking at the World and the variables bound so far: it picks
 * existing devices, processes, fds, object IDs, user buffers and IOVAs inside or
 * beside existing areas, group-mates, racing closes and exits, and a share of
 * deliberately wrong values (stale IDs, bad flags, overflowing IOVAs, wrong fd kinds).
 *
 * Because choices are interpreted against the state, every shrink of the choice list
 * is still a meaningful trace (syzkaller's "$syz" idea: address objects by index,
 * never by raw value). Fds, IDs, buffers and children are trace variables bound by
 * `expect`, so a generated trace is an ordinary trace-format file.
 */
import fc from 'fast-check';
import { U64_MAX, type Bindings, type OutValue } from '../events/index.js';
import type { World } from '../core/index.js';
import { contextOf, domainRuns } from '../hw/index.js';
import { runsOf } from './invariants.js';

/** One entry to be: the raw trace object (no expect) and which outputs bind which variables. */
export interface Template {
  readonly raw: Readonly<Record<string, unknown>>;
  readonly binds: Readonly<Record<string, string>>;
}

export type SymKind = 'fd' | 'ioas' | 'hwpt' | 'devid' | 'addr' | 'child';
export interface Sym {
  readonly name: string;
  readonly kind: SymKind;
  /** The mmap length for 'addr'. */
  readonly len?: bigint;
}

/** What the generator knows besides the World: bound variables and their kinds. */
export interface GenState {
  readonly world: World;
  readonly vars: Bindings;
  readonly syms: readonly Sym[];
  /** Counter for fresh variable names. */
  readonly n: number;
  /**
   * Let a process exit while pages objects of its pid are still pinned (kept by a
   * shared iommufd). On by default since the pid-reuse accounting bug was fixed
   * (properties/regressions/001); false keeps such processes alive.
   */
  readonly pidReuse?: boolean;
}

/** One generation choice: op selector plus five parameters. */
export type Choice = readonly [number, number, number, number, number, number];

const N = 0xffff;
export const choiceArb: fc.Arbitrary<Choice> = fc.tuple(fc.nat(N), fc.nat(N), fc.nat(N), fc.nat(N), fc.nat(N), fc.nat(N));

/** A run's worth of choices; shrinking removes choices and lowers them toward 0 (simpler picks). */
export function choicesArb(maxEvents: number, minEvents = 1): fc.Arbitrary<Choice[]> {
  return fc.array(choiceArb, { minLength: minEvents, maxLength: maxEvents, size: 'max' }) as fc.Arbitrary<Choice[]>;
}

// ---------------------------------------------------------------- vocabulary

export const DEVICES: readonly { dev: string; group: number }[] = [
  { dev: '0000:01:00.0', group: 1 },
  { dev: '0000:01:00.1', group: 1 },
  { dev: '0000:02:00.0', group: 2 },
  { dev: '0000:03:00.0', group: 3 },
];
const DEV_FLAGS = ['NO_ENFORCE_COHERENCY', 'NO_DIRTY_TRACKING', 'UNSAFE_MSI', 'REQUIRE_DIRECT'];
const PAGE = 0x1000n;
const MMAP_LENGTHS = [0x1000n, 0x2000n, 0x4000n, 0x10000n, 0x200000n, 0x400000n];
const hex = (n: bigint) => `0x${n.toString(16)}`;
const pick = <T>(xs: readonly T[], k: number): T => xs[k % xs.length]!;

// ---------------------------------------------------------------- state readers

/*
 * Derived views of the World, memoized by the identity of the parts they read:
 * Worlds are persistent values, so a view holds for every World sharing those parts,
 * and a step that leaves (say) the fd tables alone does not rescan them. One slot
 * suffices (generation reads the current World). Callers only read the results, so
 * generation is exactly what a fresh scan would give.
 */
function memo<K extends object, R>(f: (k: K) => R): (k: K) => R {
  let k1: K | undefined, r1: R | undefined;
  return (k) => {
    if (k !== k1) r1 = f(k), k1 = k;
    return r1!;
  };
}
function memo2<A extends object, B extends object, R>(f: (a: A, b: B) => R): (a: A, b: B) => R {
  let a1: A | undefined, b1: B | undefined, r1: R | undefined;
  return (a, b) => {
    if (a !== a1 || b !== b1) r1 = f(a, b), a1 = a, b1 = b;
    return r1!;
  };
}

const pidsOf = memo((procs: World['procs']): readonly number[] => {
  const ps = Object.keys(procs).map(Number).sort((a, b) => a - b);
  return ps.length ? ps : [1];
});
function pids(w: World): readonly number[] {
  return pidsOf(w.procs);
}

function varOf(s: GenState, kind: SymKind, value: number | bigint): string | number | bigint {
  for (let i = s.syms.length - 1; i >= 0; i--) {
    const y = s.syms[i]!;
    if (y.kind !== kind) continue;
    const b = s.vars.get(y.name);
    if (b !== undefined && BigInt(b as bigint | number) === BigInt(value)) return y.name;
  }
  return value;
}

function pidField(s: GenState, pid: number): Record<string, unknown> {
  return pid === 1 ? {} : { pid: varOf(s, 'child', pid) };
}

type FileKind = 'iommufd' | 'vfio-cdev' | 'memfd';
function fdsOf(w: World, pid: number, kind?: FileKind): { fd: number; fileId: number }[] {
  const p = w.procs[pid];
  if (!p) return [];
  const out: { fd: number; fileId: number }[] = [];
  for (const [fd, fileId] of Object.entries(p.fds)) {
    const f = w.files[fileId];
    if (f && (!kind || f.kind === kind)) out.push({ fd: Number(fd), fileId });
  }
  return out;
}

function ctxOfFd(w: World, pid: number, fd: number): number | null {
  const fileId = w.procs[pid]?.fds[fd];
  const f = fileId === undefined ? undefined : w.files[fileId];
  return f && f.kind === 'iommufd' ? f.ctx : null;
}

function objsOf(w: World, ctx: number | null, type: string): number[] {
  if (ctx === null) return [];
  const c = w.ctxs[ctx];
  if (!c) return [];
  return Object.values(c.objects).filter((o) => o.type === type).map((o) => o.id);
}

function areasOf(w: World, ctx: number | null, ioas: number): { start: bigint; last: bigint }[] {
  if (ctx === null) return [];
  const o = w.ctxs[ctx]?.objects[ioas];
  if (!o || o.type !== 'ioas') return [];
  const out: { start: bigint; last: bigint }[] = [];
  for (const e of o.data.areas.entries()) out.push({ start: e.start, last: e.last });
  return out;
}

function allAreas(w: World): { start: bigint; last: bigint }[] {
  const out: { start: bigint; last: bigint }[] = [];
  for (const c of Object.values(w.ctxs)) for (const o of Object.values(c.objects)) if (o.type === 'ioas') for (const e of o.data.areas.entries()) out.push(e);
  return out;
}

/** Does any pages object (of any ctx) come from this pid's memory? */
function pinsOf(w: World, pid: number): boolean {
  for (const c of Object.values(w.ctxs)) for (const [, p] of c.pages.entries()) if (p.pid === pid) return true;
  return false;
}

/** The 'addr' symbols (user buffers), cached per symbol list and its length (lists only grow). */
let lastSyms: { syms: readonly Sym[]; n: number; bufs: Sym[] } | null = null;
function addrSyms(syms: readonly Sym[]): Sym[] {
  if (lastSyms && lastSyms.syms === syms && lastSyms.n === syms.length) return lastSyms.bufs;
  const bufs = syms.filter((y) => y.kind === 'addr');
  lastSyms = { syms, n: syms.length, bufs };
  return bufs;
}

// ---------------------------------------------------------------- generators

type Gen = (s: GenState, c: Choice, wrong: boolean) => Template | null;
const T = (raw: Record<string, unknown>, binds: Record<string, string> = {}): Template => ({ raw, binds });

/** An iommufd of some live process (pid, fd, ctx), or null. */
function someIommufd(s: GenState, k: number): { pid: number; fd: number; ctx: number } | null {
  const all = iommufdsOf(s.world.procs, s.world.files);
  return all.length ? pick(all, k) : null;
}
const iommufdsOf = memo2((procs: World['procs'], files: World['files']) => {
  const w = { procs, files } as World;
  const all: { pid: number; fd: number; ctx: number }[] = [];
  for (const pid of pidsOf(procs)) for (const x of fdsOf(w, pid, 'iommufd')) all.push({ pid, fd: x.fd, ctx: ctxOfFd(w, pid, x.fd)! });
  return all;
});

type CdevFd = { pid: number; fd: number; dev: string; ctx: number | null; devId: number | null };
/** The cdev fds of live processes: any, unbound, bound. */
const cdevsOf = memo2((procs: World['procs'], files: World['files']) => {
  const w = { procs, files } as World;
  const any: CdevFd[] = [], unbound: CdevFd[] = [], bound: CdevFd[] = [];
  for (const pid of pidsOf(procs))
    for (const x of fdsOf(w, pid, 'vfio-cdev')) {
      const f = w.files[x.fileId]!;
      if (f.kind !== 'vfio-cdev') continue;
      const e = { pid, fd: x.fd, dev: f.dev, ctx: f.bound?.ctx ?? null, devId: f.bound?.devId ?? null };
      any.push(e);
      (f.bound !== null ? bound : unbound).push(e);
    }
  return { any, unbound, bound };
});

function someCdev(s: GenState, k: number, bound?: boolean): { pid: number; fd: number; dev: string; ctx: number | null; devId: number | null } | null {
  const c = cdevsOf(s.world.procs, s.world.files);
  const all = bound === undefined ? c.any : bound ? c.bound : c.unbound;
  return all.length ? pick(all, k) : null;
}

function idOrWrong(s: GenState, kind: SymKind, ids: number[], k: number, wrong: boolean): unknown {
  if (wrong || ids.length === 0) return pick([0, 99, 7, 1, 2, 3], k);
  return varOf(s, kind, pick(ids, k));
}

const gens: Record<string, Gen> = {
  device_add(s, c, wrong) {
    const free = DEVICES.filter((d) => !s.world.devices[d.dev]);
    const d = free.length && !wrong ? pick(free, c[1]) : pick(DEVICES, c[1]);
    const flags = c[2] % 10 === 0 ? { flags: [pick(DEV_FLAGS, c[3])] } : {};
    return T({ op: 'device_add', dev: d.dev, group: d.group, ...flags });
  },
  device_remove(s, c) {
    const devs = Object.keys(s.world.devices);
    if (!devs.length) return null;
    return T({ op: 'device_remove', dev: pick(devs, c[1]) });
  },
  driver_probe(s, c, wrong) {
    const devs = Object.values(s.world.devices);
    if (!devs.length) return null;
    const unbound = devs.filter((d) => !d.driver);
    const d = unbound.length && !wrong ? pick(unbound, c[1]) : pick(devs, c[1]);
    const r = c[2] % 10;
    const driver = r < 6 ? 'vfio-pci' : r < 8 ? 'nvme' : r < 9 ? 'pci-stub' : 'e1000e';
    return T({ op: 'driver_probe', dev: d.name, driver });
  },
  driver_remove(s, c) {
    const devs = Object.values(s.world.devices).filter((d) => d.driver);
    if (!devs.length) return null;
    return T({ op: 'driver_remove', dev: pick(devs, c[1]).name });
  },
  open_iommufd(s, c) {
    const pid = pick(pids(s.world), c[1]);
    return T({ op: 'open', ...pidField(s, pid), path: '/dev/iommu' }, { fd: `$f${s.n}` });
  },
  open_cdev(s, c, wrong) {
    const devs = Object.values(s.world.devices).filter((d) => d.cdev !== null || wrong);
    if (!devs.length) return null;
    const pid = pick(pids(s.world), c[2]);
    return T({ op: 'open', ...pidField(s, pid), dev: pick(devs, c[1]).name }, { fd: `$f${s.n}` });
  },
  close(s, c, wrong) {
    const pid = pick(pids(s.world), c[1]);
    const fds = fdsOf(s.world, pid);
    if (!fds.length && !wrong) return null;
    const fd = fds.length && !wrong ? varOf(s, 'fd', pick(fds, c[2]).fd) : pick([3, 4, 5, 99], c[2]);
    return T({ op: 'close', ...pidField(s, pid), fd });
  },
  mmap(s, c) {
    const pid = pick(pids(s.world), c[1]);
    const r = c[3] % 12;
    let length = pick(MMAP_LENGTHS, c[2]);
    const extra: Record<string, unknown> = {};
    if (r === 0) extra.prot = ['READ'];
    if (r === 1) {
      extra.flags = ['PRIVATE', 'HUGETLB'];
      length = 0x200000n;
    }
    return T({ op: 'mmap', ...pidField(s, pid), length: hex(length), ...extra }, { addr: `$m${s.n}` });
  },
  munmap(s, c) {
    const bufs = addrSyms(s.syms);
    if (!bufs.length) return null;
    const b = pick(bufs, c[1]);
    const addr = s.vars.get(b.name) as bigint | undefined;
    if (addr === undefined) return null;
    const pid = pick(pids(s.world), c[2]);
    const whole = c[3] % 2 === 0;
    return whole
      ? T({ op: 'munmap', ...pidField(s, pid), addr: b.name, length: hex(b.len!) })
      : T({ op: 'munmap', ...pidField(s, pid), addr: hex(addr + PAGE * BigInt(c[4] % 4)), length: hex(PAGE) });
  },
  fork(s, c) {
    const pid = pick(pids(s.world), c[1]);
    return T({ op: 'fork', ...pidField(s, pid) }, { child: `$p${s.n}` });
  },
  exit(s, c) {
    let ps = pids(s.world);
    if (s.pidReuse === false) ps = ps.filter((p) => !pinsOf(s.world, p));
    if (!ps.length) return null;
    const kids = ps.filter((p) => p !== 1);
    const pid = kids.length && c[2] % 8 !== 0 ? pick(kids, c[1]) : pick(ps, c[1]);
    return T({ op: 'exit', ...pidField(s, pid) });
  },
  setrlimit(s, c) {
    const pid = pick(pids(s.world), c[1]);
    return T({ op: 'setrlimit', ...pidField(s, pid), memlock: hex(pick([0x4000n, 0x10000n, 0x100000n, 0x800000n], c[2])) });
  },
  spawn(_s, c) {
    const pid = 100 + (c[1] % 3);
    return T({ op: 'spawn', pid, caps: c[2] % 2 ? ['IPC_LOCK'] : ['SYS_RESOURCE'], memlock: hex(pick([0x8000n, 0x800000n], c[3])) });
  },
  IOMMU_IOAS_ALLOC(s, c, wrong) {
    const f = someIommufd(s, c[1]);
    if (!f) return null;
    return T({ op: 'IOMMU_IOAS_ALLOC', ...pidField(s, f.pid), fd: varOf(s, 'fd', f.fd), ...(wrong ? { flags: 1 } : {}) }, { out_ioas_id: `$i${s.n}` });
  },
  IOMMU_IOAS_MAP(s, c, wrong) {
    const f = someIommufd(s, c[1]);
    if (!f) return null;
    const w = s.world;
    const ioas = objsOf(w, f.ctx, 'ioas');
    const ioasId = idOrWrong(s, 'ioas', ioas, c[2], wrong && c[5] % 3 === 0);
    const bufs = addrSyms(s.syms);
    let userVa: unknown = hex(0x7000_0000n);
    let length = PAGE * BigInt(1 + (c[3] % 4));
    if (bufs.length) {
      const b = pick(bufs, c[3]);
      const pages = b.len! / PAGE;
      const off = BigInt(c[4] % Number(pages));
      const addr = s.vars.get(b.name) as bigint;
      userVa = off === 0n ? b.name : hex(addr + off * PAGE);
      const room = pages - off;
      length = (c[4] % 3 === 0 ? room : 1n + (BigInt(c[3]) % room)) * PAGE;
    }
    const fixed = c[5] % 3 !== 0;
    const areas = ioas.length ? areasOf(w, f.ctx, pick(ioas, c[2])) : [];
    let iova = 0x100000n * BigInt(1 + (c[4] % 16));
    const r = c[5] % 7;
    if (areas.length && r === 1) iova = pick(areas, c[1]).last + 1n;
    if (areas.length && r === 2) iova = pick(areas, c[1]).start;
    const flags = ['READABLE', ...(c[2] % 4 ? ['WRITEABLE'] : []), ...(fixed ? ['FIXED_IOVA'] : [])];
    const raw: Record<string, unknown> = { op: 'IOMMU_IOAS_MAP', ...pidField(s, f.pid), fd: varOf(s, 'fd', f.fd), ioas_id: ioasId, flags, user_va: userVa, length: hex(length) };
    if (fixed) raw.iova = hex(iova);
    if (wrong) {
      const k = c[4] % 7;
      if (k === 0) raw.flags = 0x10 | 6;
      else if (k === 1) raw.iova = '0xffffffffffffffff';
      else if (k === 2) raw.iova = '0xfee00000';
      else if (k === 3) raw.length = '0x1001';
      else if (k === 4) raw.trailing = '0x01'; // E2BIG: bytes past the kernel's struct
      else if (k === 5) {
        // ENOSPC: an automatic IOVA for a range no hole can hold
        raw.flags = ['READABLE'];
        raw.length = '0x4000000000000000';
        delete raw.iova;
      } else raw.flags = ['FIXED_IOVA'];
    }
    return T(raw);
  },
  IOMMU_IOAS_UNMAP(s, c, wrong) {
    const f = someIommufd(s, c[1]);
    if (!f) return null;
    const ioas = objsOf(s.world, f.ctx, 'ioas');
    if (!ioas.length && !wrong) return null;
    const id = ioas.length ? pick(ioas, c[2]) : 1;
    const areas = areasOf(s.world, f.ctx, id);
    let iova = 0n, length = U64_MAX;
    const r = c[3] % 8;
    if (areas.length && r < 5) {
      const a = pick(areas, c[4]);
      iova = a.start;
      length = a.last - a.start + 1n;
      if (r === 3) length = pick(areas, c[5]).last + 1n > iova ? pick(areas, c[5]).last + 1n - iova : length; // spans several
      if (r === 4) iova += PAGE; // cuts an area: ENOENT or a partial unmap
    } else if (r === 5) {
      iova = 0x100000n * BigInt(1 + (c[4] % 16));
      length = PAGE;
    }
    if (wrong) length = c[4] % 2 ? 0n : U64_MAX - 1n;
    return T({ op: 'IOMMU_IOAS_UNMAP', ...pidField(s, f.pid), fd: varOf(s, 'fd', f.fd), ioas_id: varOf(s, 'ioas', id), iova: hex(iova), length: hex(length) });
  },
  IOMMU_IOAS_COPY(s, c, wrong) {
    const f = someIommufd(s, c[1]);
    if (!f) return null;
    const ioas = objsOf(s.world, f.ctx, 'ioas');
    const withAreas = ioas.filter((i) => areasOf(s.world, f.ctx, i).length);
    if (!withAreas.length) return null;
    const src = pick(withAreas, c[2]);
    const a = pick(areasOf(s.world, f.ctx, src), c[3]);
    let srcIova = a.start, length = a.last - a.start + 1n;
    if (c[4] % 4 === 0 && length > PAGE) {
      srcIova += PAGE;
      length -= PAGE;
    }
    const dst = pick(ioas, c[5]);
    const fixed = c[4] % 3 === 0;
    const raw: Record<string, unknown> = {
      op: 'IOMMU_IOAS_COPY', ...pidField(s, f.pid), fd: varOf(s, 'fd', f.fd), flags: ['READABLE', ...(c[3] % 2 ? ['WRITEABLE'] : []), ...(fixed ? ['FIXED_IOVA'] : [])],
      dst_ioas_id: varOf(s, 'ioas', dst), src_ioas_id: varOf(s, 'ioas', src), length: hex(length), src_iova: hex(srcIova),
    };
    if (fixed) raw.dst_iova = hex(0x4000000n * BigInt(1 + (c[1] % 8)));
    if (wrong) raw.length = hex(length + PAGE * 64n);
    return T(raw);
  },
  IOMMU_DESTROY(s, c, wrong) {
    const f = someIommufd(s, c[1]);
    if (!f) return null;
    const objs = s.world.ctxs[f.ctx] ? Object.values(s.world.ctxs[f.ctx]!.objects) : [];
    const o = objs.length ? pick(objs, c[2]) : null;
    const id = !o || wrong ? pick([0, 42, 1, 2], c[3]) : varOf(s, o.type === 'ioas' ? 'ioas' : o.type === 'hwpt_paging' ? 'hwpt' : 'devid', o.id);
    return T({ op: 'IOMMU_DESTROY', ...pidField(s, f.pid), fd: varOf(s, 'fd', f.fd), id });
  },
  IOMMU_HWPT_ALLOC(s, c, wrong) {
    const f = someIommufd(s, c[1]);
    if (!f) return null;
    const devs = objsOf(s.world, f.ctx, 'device');
    const ioas = objsOf(s.world, f.ctx, 'ioas');
    if ((!devs.length || !ioas.length) && !wrong) return null;
    const r = c[4] % 8;
    const flags = r === 0 ? ['DIRTY_TRACKING'] : r === 1 ? ['NEST_PARENT'] : r === 2 && wrong ? 0x100 : [];
    return T({
      op: 'IOMMU_HWPT_ALLOC', ...pidField(s, f.pid), fd: varOf(s, 'fd', f.fd), flags,
      dev_id: idOrWrong(s, 'devid', devs, c[2], wrong && c[5] % 2 === 0), pt_id: idOrWrong(s, 'ioas', ioas, c[3], wrong && c[5] % 2 === 1),
    }, { out_hwpt_id: `$h${s.n}` });
  },
  VFIO_DEVICE_BIND_IOMMUFD(s, c, wrong) {
    const d = someCdev(s, c[1], wrong ? undefined : false);
    if (!d) return null;
    const ifds = fdsOf(s.world, d.pid, 'iommufd');
    const ifd = ifds.length ? varOf(s, 'fd', pick(ifds, c[2]).fd) : d.fd;
    const raw: Record<string, unknown> = { op: 'VFIO_DEVICE_BIND_IOMMUFD', ...pidField(s, d.pid), fd: varOf(s, 'fd', d.fd), iommufd: ifd };
    if (wrong && c[3] % 2) raw.flags = 1;
    return T(raw, { out_devid: `$d${s.n}` });
  },
  VFIO_DEVICE_ATTACH_IOMMUFD_PT(s, c, wrong) {
    const d = someCdev(s, c[1], true);
    if (!d) return null;
    const ioas = objsOf(s.world, d.ctx, 'ioas');
    const hwpts = objsOf(s.world, d.ctx, 'hwpt_paging');
    // Group-mates: half the time aim away from the page table the group already uses.
    const dev = s.world.devices[d.dev];
    const cur = dev && d.ctx !== null ? s.world.ctxs[d.ctx]?.igroups[dev.group]?.hwpt ?? null : null;
    const away = cur !== null && c[4] % 2 === 0;
    const hw = away ? hwpts.filter((h) => h !== cur) : hwpts;
    const io = away ? ioas.filter((i) => { const o = s.world.ctxs[d.ctx!]!.objects[i]; return o?.type === 'ioas' && !o.data.hwpts.includes(cur!); }) : ioas;
    const useHwpt = hw.length && (c[3] % 2 === 0 || !io.length);
    const pt = useHwpt ? varOf(s, 'hwpt', pick(hw, c[2])) : idOrWrong(s, 'ioas', io, c[2], wrong);
    return T({ op: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', ...pidField(s, d.pid), fd: varOf(s, 'fd', d.fd), pt_id: pt }, { pt_id: `$h${s.n}` });
  },
  VFIO_DEVICE_DETACH_IOMMUFD_PT(s, c, wrong) {
    const d = someCdev(s, c[1], wrong ? undefined : true);
    if (!d) return null;
    return T({ op: 'VFIO_DEVICE_DETACH_IOMMUFD_PT', ...pidField(s, d.pid), fd: varOf(s, 'fd', d.fd) });
  },
  dma(s, c, wrong) {
    const devs = Object.values(s.world.devices);
    if (!devs.length) return null;
    const d = pick(devs, c[1]);
    const w = s.world;
    let iova = 0x100000n;
    const ce = contextOf(w.hw, d.unit, d.name);
    const runs = ce && ce.kind === 'domain' ? runsOf(w, ce.domain) ?? domainRuns(w.hw, ce.domain) : [];
    const r = c[3] % 6;
    const areas = runs.length && r < 4 ? null : allAreas(w);
    if (!areas) {
      const run = pick(runs, c[2]);
      iova = run.iova + (BigInt(c[4]) * 8n) % run.length;
    } else if (areas.length && r < 5) iova = pick(areas, c[2]).start;
    else iova = 0x100000n * BigInt(c[4] % 16);
    if (wrong) iova = pick([0xfee00000n, 0xfffffffffffff000n, 0n], c[4]);
    return T({ op: 'dma', dev: d.name, iova: hex(iova), length: pick([8, 64, 4096], c[5]), dir: c[2] % 2 ? 'write' : 'read' });
  },
  dma_map(s, c) {
    const devs = Object.values(s.world.devices).filter((d) => d.driver);
    if (!devs.length) return null;
    return T({ op: 'dma_map', dev: pick(devs, c[1]).name, length: hex(PAGE * BigInt(1 + (c[2] % 3))) });
  },
  IOMMU_OPTION(s, c) {
    const f = someIommufd(s, c[1]);
    if (!f) return null;
    const ioas = objsOf(s.world, f.ctx, 'ioas');
    if (c[2] % 3 === 0 || !ioas.length)
      return T({ op: 'IOMMU_OPTION', ...pidField(s, f.pid), fd: varOf(s, 'fd', f.fd), option_id: 'RLIMIT_MODE', option_op: 'SET', val64: c[3] % 2 });
    return T({ op: 'IOMMU_OPTION', ...pidField(s, f.pid), fd: varOf(s, 'fd', f.fd), option_id: 'HUGE_PAGES', option_op: 'SET', object_id: varOf(s, 'ioas', pick(ioas, c[3])), val64: c[4] % 2 });
  },
  IOMMU_IOAS_IOVA_RANGES(s, c, wrong) {
    const f = someIommufd(s, c[1]);
    if (!f) return null;
    const ioas = objsOf(s.world, f.ctx, 'ioas');
    return T({ op: 'IOMMU_IOAS_IOVA_RANGES', ...pidField(s, f.pid), fd: varOf(s, 'fd', f.fd), ioas_id: idOrWrong(s, 'ioas', ioas, c[2], wrong), num_iovas: c[3] % 4 });
  },
  IOMMU_VFIO_IOAS(s, c, wrong) {
    const f = someIommufd(s, c[1]);
    if (!f) return null;
    const ioas = objsOf(s.world, f.ctx, 'ioas');
    const op = pick(['GET', 'SET', 'CLEAR'], c[3]);
    return T({ op: 'IOMMU_VFIO_IOAS', ...pidField(s, f.pid), fd: varOf(s, 'fd', f.fd), vfio_ioas_op: op, ...(op === 'SET' ? { ioas_id: idOrWrong(s, 'ioas', ioas, c[2], wrong) } : {}) });
  },
  IOMMU_GET_HW_INFO(s, c, wrong) {
    const f = someIommufd(s, c[1]);
    if (!f) return null;
    const devs = objsOf(s.world, f.ctx, 'device');
    return T({ op: 'IOMMU_GET_HW_INFO', ...pidField(s, f.pid), fd: varOf(s, 'fd', f.fd), dev_id: idOrWrong(s, 'devid', devs, c[2], wrong), ...(wrong && c[3] % 2 ? { flags: 2 } : {}) });
  },
  IOMMU_HWPT_SET_DIRTY_TRACKING(s, c, wrong) {
    const f = someIommufd(s, c[1]);
    if (!f) return null;
    const hw = objsOf(s.world, f.ctx, 'hwpt_paging');
    return T({ op: 'IOMMU_HWPT_SET_DIRTY_TRACKING', ...pidField(s, f.pid), fd: varOf(s, 'fd', f.fd), hwpt_id: idOrWrong(s, 'hwpt', hw, c[2], wrong), flags: c[3] % 3 === 0 ? 0 : 1 });
  },
  IOMMU_HWPT_GET_DIRTY_BITMAP(s, c, wrong) {
    const f = someIommufd(s, c[1]);
    if (!f) return null;
    const hw = objsOf(s.world, f.ctx, 'hwpt_paging');
    const areas = allAreas(s.world);
    const a = areas.length ? pick(areas, c[3]) : { start: 0x100000n, last: 0x100fffn };
    return T({
      op: 'IOMMU_HWPT_GET_DIRTY_BITMAP', ...pidField(s, f.pid), fd: varOf(s, 'fd', f.fd), hwpt_id: idOrWrong(s, 'hwpt', hw, c[2], wrong),
      iova: hex(a.start), length: hex(a.last - a.start + 1n), page_size: wrong ? 0 : 4096, ...(c[4] % 2 ? { flags: ['NO_CLEAR'] } : {}),
    });
  },
  memfd_create(s, c) {
    const pid = pick(pids(s.world), c[1]);
    return T({ op: 'memfd_create', ...pidField(s, pid), length: hex(PAGE * BigInt(1 + (c[2] % 4))) }, { fd: `$m${s.n}` });
  },
  ftruncate(s, c) {
    const pid = pick(pids(s.world), c[1]);
    const fds = fdsOf(s.world, pid, c[3] % 4 === 0 ? undefined : 'memfd');
    if (!fds.length) return null;
    return T({ op: 'ftruncate', ...pidField(s, pid), fd: varOf(s, 'fd', pick(fds, c[2]).fd), length: hex(PAGE * BigInt(c[4] % 8)) });
  },
  ioctl(s, c) {
    const pid = pick(pids(s.world), c[1]);
    const fds = fdsOf(s.world, pid);
    const fd = fds.length ? varOf(s, 'fd', pick(fds, c[2]).fd) : 3;
    return T({ op: 'ioctl', ...pidField(s, pid), fd, cmd: pick([0x3bff, 0x3b7f, 0x1234, 0x3bc0], c[3]) });
  },
  IOMMU_IOAS_ALLOW_IOVAS(s, c) {
    const f = someIommufd(s, c[1]);
    if (!f) return null;
    const ioas = objsOf(s.world, f.ctx, 'ioas');
    if (!ioas.length) return null;
    const start = 0x100000n * BigInt(c[3] % 8);
    return T({ op: 'IOMMU_IOAS_ALLOW_IOVAS', ...pidField(s, f.pid), fd: varOf(s, 'fd', f.fd), ioas_id: varOf(s, 'ioas', pick(ioas, c[2])), allowed_iovas: c[4] % 4 === 0 ? [] : [{ start: hex(start), last: hex(start + 0x1000000n - 1n) }] });
  },
};

type OpKey = keyof typeof gens;

/** Op weights, raised for ops that move the current state forward. */
const devCounts = memo((devices: World['devices']) => {
  const ds = Object.values(devices);
  return { ndev: ds.length, vfio: ds.filter((d) => d.cdev !== null).length };
});
const ctxCount = memo((ctxs: World['ctxs']) => Object.keys(ctxs).length);
const cdevCounts = memo((files: World['files']) => {
  let cdevs = 0, bound = 0;
  for (const f of Object.values(files)) if (f.kind === 'vfio-cdev') (f.bound ? bound++ : cdevs++);
  return { cdevs, bound };
});
const WEIGHTS = new Map<string, { ws: [OpKey, number][]; total: number }>();
let lastW: { devices: object; ctxs: object; files: object; e: { ws: [OpKey, number][]; total: number } } | null = null;

/** Op weights and their total for a World: a function of a few counts, so each table is built once. */
function weightsOf(w: World): { ws: [OpKey, number][]; total: number } {
  if (lastW && lastW.devices === w.devices && lastW.ctxs === w.ctxs && lastW.files === w.files) return lastW.e;
  const { ndev, vfio } = devCounts(w.devices);
  const nctx = ctxCount(w.ctxs);
  const { cdevs, bound } = cdevCounts(w.files);
  const key = `${ndev},${vfio},${nctx},${cdevs},${bound}`;
  let e = WEIGHTS.get(key);
  if (!e) {
    const ws = weights(ndev, vfio, nctx, cdevs, bound);
    e = { ws, total: ws.reduce((n, [, x]) => n + x, 0) };
    WEIGHTS.set(key, e);
  }
  lastW = { devices: w.devices, ctxs: w.ctxs, files: w.files, e };
  return e;
}

function weights(ndev: number, vfio: number, nctx: number, cdevs: number, bound: number): [OpKey, number][] {
  return [
    ['device_add', ndev < 2 ? 12 : ndev < 4 ? 4 : 1],
    ['device_remove', 1],
    ['driver_probe', ndev > vfio ? 8 : 2],
    ['driver_remove', 1],
    ['open_iommufd', nctx === 0 ? 10 : 2],
    ['open_cdev', vfio && cdevs === 0 ? 10 : 3],
    ['close', 3],
    ['mmap', 4],
    ['munmap', 1],
    ['fork', 1],
    ['exit', 1],
    ['setrlimit', 1],
    ['spawn', 1],
    ['IOMMU_IOAS_ALLOC', nctx ? 5 : 0],
    ['IOMMU_IOAS_MAP', nctx ? 10 : 0],
    ['IOMMU_IOAS_UNMAP', nctx ? 5 : 0],
    ['IOMMU_IOAS_COPY', nctx ? 3 : 0],
    ['IOMMU_DESTROY', nctx ? 3 : 0],
    ['IOMMU_HWPT_ALLOC', bound ? 5 : 0],
    ['VFIO_DEVICE_BIND_IOMMUFD', cdevs && nctx ? 12 : 1],
    ['VFIO_DEVICE_ATTACH_IOMMUFD_PT', bound ? 10 : 0],
    ['VFIO_DEVICE_DETACH_IOMMUFD_PT', bound ? 3 : 0],
    ['dma', ndev ? 10 : 0],
    ['dma_map', ndev ? 2 : 0],
    ['IOMMU_OPTION', nctx ? 1 : 0],
    ['IOMMU_IOAS_ALLOW_IOVAS', nctx ? 1 : 0],
    ['IOMMU_IOAS_IOVA_RANGES', nctx ? 1 : 0],
    ['IOMMU_VFIO_IOAS', nctx ? 1 : 0],
    ['IOMMU_GET_HW_INFO', bound ? 1 : 0],
    ['IOMMU_HWPT_SET_DIRTY_TRACKING', nctx ? 1 : 0],
    ['IOMMU_HWPT_GET_DIRTY_BITMAP', nctx ? 1 : 0],
    ['memfd_create', 1],
    ['ftruncate', 1],
    ['ioctl', 1],
  ];
}

/** One trace entry from one choice, given the current state. Always returns an entry. */
export function nextTemplate(s: GenState, c: Choice): Template {
  const { ws, total } = weightsOf(s.world);
  let k = c[0] % total;
  let i = 0;
  for (; i < ws.length; i++) {
    k -= ws[i]![1];
    if (k < 0) break;
  }
  const wrong = c[5] % 16 === 15;
  for (let j = 0; j < ws.length; j++) {
    const [name, weight] = ws[(i + j) % ws.length]!;
    if (weight === 0) continue;
    const t = gens[name]!(s, c, wrong);
    if (t) return t;
  }
  return gens.device_add!(s, c, wrong)!;
}

/** The symbol kinds that an op's bound outputs have. */
export function symKind(op: string, field: string): SymKind | null {
  if (field === 'fd') return 'fd';
  if (field === 'out_ioas_id') return 'ioas';
  if (field === 'out_hwpt_id' || (op === 'VFIO_DEVICE_ATTACH_IOMMUFD_PT' && field === 'pt_id')) return 'hwpt';
  if (field === 'out_devid') return 'devid';
  if (field === 'addr') return 'addr';
  if (field === 'child') return 'child';
  return null;
}

export type { OutValue };
