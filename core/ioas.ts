/*
 * ioas.ts: the IOAS data-plane ioctls: IOMMU_IOAS_MAP, IOMMU_IOAS_UNMAP,
 * IOMMU_IOAS_COPY, IOMMU_IOAS_IOVA_RANGES, IOMMU_IOAS_ALLOW_IOVAS, IOMMU_OPTION and
 * IOMMU_VFIO_IOAS (drivers/iommu/iommufd/ioas.c and io_pagetable.c), each a ladder
 * of checks in the kernel's order followed by the change.
 *
 * Invariants: areas never overlap and never meet a reserved range; native UNMAP
 * removes whole areas only (and is not atomic when it fails part-way); COPY shares
 * pages and never pins twice.
 */
import type { Draft } from 'immer';
import { OPTION_IDS, OPTION_OPS, U64_MAX, VFIO_IOAS_OPS, fail, isOutcome, ok, type InputOf, type Outcome } from '../events/index.js';
import { allocIova, buildAllowed, checkFixed, fmtRange, planUnmap, type IntervalEntry } from './iopt/index.js';
import type { Area, IoasData } from './ioasData.js';
import type { Ctx, IoasObj, World } from './world.js';
import { iommufdPrologue } from './ioctl.js';
import { getObj } from './objects.js';
import { newPages, refPages, type Pages } from './pages.js';
import { alignmentFor, fillArea, releaseArea } from './ioasDomains.js';
import { hwHandlers } from './hwptIoctls.js';
import { notifyUnmap } from './access.js';
import { copyArea } from './bugs.js';
import { plat } from './peek.js';

const FIXED_IOVA = 1, WRITEABLE = 2, READABLE = 4;
const MAP_FLAGS = FIXED_IOVA | WRITEABLE | READABLE;
const hex = (n: bigint) => `0x${n.toString(16)}`;


function ioasIn(ctx: Draft<Ctx>, id: number): Draft<IoasObj> | string {
  const o = getObj(ctx as unknown as Ctx, id, 'ioas');
  return typeof o === 'string' ? o : (ctx.objects[id] as Draft<IoasObj>);
}
const dataOf = (io: Draft<IoasObj>) => io.data as unknown as IoasData;

/** Inserts one area and fills it into the IOAS's domains (`fresh`: its new, unstored pages object). */
function addArea(d: Draft<World>, ctxId: number, io: Draft<IoasObj>, iova: bigint, length: bigint, area: Area, fresh?: Pages): Outcome | null {
  io.data.areas = dataOf(io).areas.insert(iova, iova + length - 1n, area) as never;
  const r = fillArea(d, ctxId, io.id, { start: iova, last: iova + length - 1n, value: area }, fresh);
  return r ? fail(r.errno, r.reason) : null;
}

/** Removes one area: out of every domain first, then unpinned and its pages released, then dropped. */
function removeArea(d: Draft<World>, ctxId: number, io: Draft<IoasObj>, e: IntervalEntry<Area>): void {
  releaseArea(d, ctxId, io.id, e);
  io.data.areas = dataOf(io).areas.remove(e.start) as never;
}

/** Unmaps every area of an IOAS (IOAS destroy, unmap-all). Returns the bytes unmapped. */
export function unmapAll(d: Draft<World>, ctxId: number, ioasId: number): bigint {
  const io = d.ctxs[ctxId]!.objects[ioasId] as Draft<IoasObj>;
  let bytes = 0n;
  for (const e of [...dataOf(io).areas.entries()]) {
    removeArea(d, ctxId, io, e);
    bytes += e.last - e.start + 1n;
  }
  return bytes;
}

/** MAP and COPY share the placement rules (io_pagetable.c iopt_alloc_area_pages). */
function place(d: Draft<World>, io: Draft<IoasObj>, fixed: boolean, iova: bigint, length: bigint, addr: bigint): { iova: bigint } | Outcome {
  const data = dataOf(io);
  const align = data.iovaAlignment;
  if (length % align !== 0n) return fail('EINVAL', `length ${hex(length)} is not a multiple of the IOAS alignment ${hex(align)}`);
  if (!fixed) {
    const r = allocIova({ areas: data.areas, reserved: data.reserved, allowed: data.allowed, length, addr, iovaAlignment: align, pageSize: plat(d).pageSize });
    if (!r.ok) return fail(r.errno, r.reason);
    iova = r.iova;
  } else {
    const r = checkFixed(data.areas, data.reserved, iova, length, align);
    if (!r.ok) return fail(r.errno, r.reason);
  }
  if ((addr % plat(d).pageSize) % align !== 0n)
    return fail('EINVAL', `the sub-page offset of ${hex(addr)} is not a multiple of the IOAS alignment ${hex(align)}`);
  return { iova };
}

const protOf = (flags: number) => ((flags & READABLE) ? 1 : 0) | ((flags & WRITEABLE) ? 2 : 0);

export const ioasHandlers = {
  IOMMU_IOAS_MAP(d: Draft<World>, i: InputOf<'IOMMU_IOAS_MAP'>): Outcome {
    const ctx = iommufdPrologue(d, i);
    if (isOutcome(ctx)) return ctx;
    const f = i.f;
    if (f.flags & ~MAP_FLAGS) return fail('EOPNOTSUPP', `unknown flag bits 0x${(f.flags & ~MAP_FLAGS).toString(16)}`);
    if (f.__reserved !== 0) return fail('EOPNOTSUPP', '__reserved must be 0');
    if (f.iova >= U64_MAX || f.length >= U64_MAX) return fail('EOVERFLOW', 'iova or length does not fit in unsigned long');
    if (!(f.flags & (READABLE | WRITEABLE))) return fail('EINVAL', 'neither READABLE nor WRITEABLE is set');
    const io = ioasIn(ctx, f.ioas_id);
    if (typeof io === 'string') return fail('ENOENT', io);
    if (f.length === 0n || f.length > U64_MAX - plat(d).pageSize) return fail('EINVAL', `bad length ${hex(f.length)}`);
    const at = place(d, io, (f.flags & FIXED_IOVA) !== 0, f.iova, f.length, f.user_va);
    if (isOutcome(at)) return at;
    const { pages, pageOffset } = newPages(d, ctx.id, i.pid, f.user_va, f.length, (f.flags & WRITEABLE) !== 0, 1);
    const r = addArea(d, ctx.id, io, at.iova, f.length, { pages: pages.id, pageOffset, prot: protOf(f.flags) }, pages);
    if (r) return r;
    return ok({ iova: at.iova });
  },

  IOMMU_IOAS_UNMAP(d: Draft<World>, i: InputOf<'IOMMU_IOAS_UNMAP'>, env: { keepOnError(): void }): Outcome {
    const ctx = iommufdPrologue(d, i);
    if (isOutcome(ctx)) return ctx;
    const f = i.f;
    const io = ioasIn(ctx, f.ioas_id);
    if (typeof io === 'string') return fail('ENOENT', io);
    if (f.iova === 0n && f.length === U64_MAX) {
      let bytes = 0n;
      for (const e of [...dataOf(io).areas.entries()]) {
        const r = notifyUnmap(d, ctx.id, io.id, e);
        if (r) {
          env.keepOnError(); // the notified drivers' unpins and earlier removals stay
          return fail(r.errno, r.reason);
        }
        removeArea(d, ctx.id, io, e);
        bytes += e.last - e.start + 1n;
      }
      return ok({ length: bytes });
    }
    if (f.iova >= U64_MAX || f.length >= U64_MAX) return fail('EOVERFLOW', 'iova or length does not fit in unsigned long');
    if (f.length === 0n) return fail('EINVAL', 'length 0');
    if (f.iova + f.length - 1n > U64_MAX) return fail('EOVERFLOW', 'iova + length - 1 overflows');
    const plan = planUnmap(dataOf(io).areas, f.iova, f.iova + f.length - 1n);
    for (const [k, e] of plan.inside.entries()) {
      // Areas in-kernel accesses pin: every access of the IOAS is told to unpin first.
      const r = notifyUnmap(d, ctx.id, io.id, e);
      if (r) {
        env.keepOnError(); // the notified drivers' unpins and earlier removals stay
        return fail(r.errno, `${r.reason}${k ? ` (${k} area${k > 1 ? 's' : ''} before it were already unmapped)` : ''}`);
      }
      removeArea(d, ctx.id, io, e);
    }
    if (plan.stop) {
      // The kernel does not roll back the areas it already removed.
      if (plan.inside.length) env.keepOnError();
      const done = plan.inside.length ? ` (${plan.inside.length} area${plan.inside.length > 1 ? 's' : ''} before it were already unmapped)` : '';
      return fail(plan.stop.errno, `${plan.stop.reason}: native UNMAP never splits an area${done}`);
    }
    if (plan.empty) return fail('ENOENT', `nothing is mapped in ${fmtRange(f.iova, f.iova + f.length - 1n)}`);
    return ok({ length: plan.bytes });
  },

  IOMMU_IOAS_COPY(d: Draft<World>, i: InputOf<'IOMMU_IOAS_COPY'>): Outcome {
    const ctx = iommufdPrologue(d, i);
    if (isOutcome(ctx)) return ctx;
    const f = i.f;
    if (f.flags & ~MAP_FLAGS) return fail('EOPNOTSUPP', `unknown flag bits 0x${(f.flags & ~MAP_FLAGS).toString(16)}`);
    if (f.length >= U64_MAX || f.src_iova >= U64_MAX || f.dst_iova >= U64_MAX) return fail('EOVERFLOW', 'length or an IOVA does not fit in unsigned long');
    if (!(f.flags & (READABLE | WRITEABLE))) return fail('EINVAL', 'neither READABLE nor WRITEABLE is set');
    const src = ioasIn(ctx, f.src_ioas_id);
    if (typeof src === 'string') return fail('ENOENT', `source: ${src}`);
    if (f.length === 0n) return fail('EINVAL', 'length 0');
    const last = f.src_iova + f.length - 1n;
    if (last > U64_MAX) return fail('EOVERFLOW', 'src_iova + length - 1 overflows');
    // iopt_get_pages: a contiguous run of areas covering the whole source range.
    const pieces: { off: bigint; len: bigint; area: Area }[] = [];
    let cur = f.src_iova;
    for (const e of dataOf(src).areas.intersecting(f.src_iova, last)) {
      if (e.start > cur) break;
      const s = cur;
      const l = e.last < last ? e.last : last;
      pieces.push({ off: s - f.src_iova, len: l - s + 1n, area: { ...e.value, pageOffset: e.value.pageOffset + (s - e.start) } });
      cur = l + 1n;
      if (l === last) break;
    }
    if (cur <= last) return fail('ENOENT', `the source range ${fmtRange(f.src_iova, last)} has a hole at ${hex(cur)}`);
    const dst = ioasIn(ctx, f.dst_ioas_id);
    if (typeof dst === 'string') return fail('ENOENT', `destination: ${dst}`);
    const first = pieces[0]!;
    const srcPages = d.ctxs[ctx.id]!.pages.get(first.area.pages)!;
    const addr = srcPages.va + first.area.pageOffset;
    const at = place(d, dst, (f.flags & FIXED_IOVA) !== 0, f.dst_iova, f.length, addr);
    if (isOutcome(at)) return at;
    for (const p of pieces) {
      const pg = d.ctxs[ctx.id]!.pages.get(p.area.pages)!;
      if ((f.flags & WRITEABLE) && !pg.writable) return fail('EPERM', 'WRITEABLE was requested but the source pages were mapped read-only');
      if ((p.area.pageOffset % plat(d).pageSize) % dataOf(dst).iovaAlignment !== 0n)
        return fail('EINVAL', `the slice's sub-page offset is not a multiple of the destination alignment ${hex(dataOf(dst).iovaAlignment)}`);
    }
    for (const p of pieces) {
      const area = copyArea(d, ctx.id, p.area);
      refPages(d, ctx.id, area.pages, 1);
      const r = addArea(d, ctx.id, dst, at.iova + p.off, p.len, { ...area, prot: protOf(f.flags) });
      if (r) return r;
    }
    return ok({ dst_iova: at.iova });
  },

  IOMMU_IOAS_IOVA_RANGES(d: Draft<World>, i: InputOf<'IOMMU_IOAS_IOVA_RANGES'>): Outcome {
    const ctx = iommufdPrologue(d, i);
    if (isOutcome(ctx)) return ctx;
    if (i.f.__reserved !== 0) return fail('EOPNOTSUPP', '__reserved must be 0');
    const io = ioasIn(ctx, i.f.ioas_id);
    if (typeof io === 'string') return fail('ENOENT', io);
    const holes = dataOf(io).reserved.holes();
    const out = {
      num_iovas: holes.length,
      out_iova_alignment: dataOf(io).iovaAlignment,
      allowed_iovas: holes.slice(0, i.f.num_iovas).map((h) => ({ start: h.start, last: h.last })),
    };
    if (holes.length > i.f.num_iovas)
      return fail('EMSGSIZE', `${holes.length} ranges do not fit in the ${i.f.num_iovas} offered; num_iovas was written back`, out);
    return ok(out);
  },

  IOMMU_IOAS_ALLOW_IOVAS(d: Draft<World>, i: InputOf<'IOMMU_IOAS_ALLOW_IOVAS'>): Outcome {
    const ctx = iommufdPrologue(d, i);
    if (isOutcome(ctx)) return ctx;
    if (i.f.__reserved !== 0) return fail('EOPNOTSUPP', '__reserved must be 0');
    const io = ioasIn(ctx, i.f.ioas_id);
    if (typeof io === 'string') return fail('ENOENT', io);
    const n = i.given.has('num_iovas') ? i.f.num_iovas : i.f.allowed_iovas.length;
    if (n > i.f.allowed_iovas.length) return fail('EFAULT', `num_iovas ${n} reads past the ${i.f.allowed_iovas.length} ranges given`);
    const r = buildAllowed(dataOf(io).reserved, i.f.allowed_iovas.slice(0, n));
    if (!r.ok) return fail(r.errno, r.reason);
    io.data.allowed = r.allowed as never;
    return ok();
  },

  IOMMU_OPTION(d: Draft<World>, i: InputOf<'IOMMU_OPTION'>): Outcome {
    const ctx = iommufdPrologue(d, i);
    if (isOutcome(ctx)) return ctx;
    const f = i.f;
    if (f.__reserved !== 0) return fail('EOPNOTSUPP', '__reserved must be 0');
    const set = f.option_op === OPTION_OPS.SET;
    if (!set && f.option_op !== OPTION_OPS.GET) return fail('EOPNOTSUPP', `unknown option op ${f.option_op}`);
    if (f.option_id === OPTION_IDS.RLIMIT_MODE) {
      if (f.object_id !== 0) return fail('EOPNOTSUPP', 'RLIMIT_MODE is global: object_id must be 0');
      if (!set) return ok({ val64: ctx.accountMode === 'mm' ? 1n : 0n });
      if (!d.procs[i.pid]!.caps.includes('SYS_RESOURCE')) return fail('EPERM', 'setting RLIMIT_MODE needs CAP_SYS_RESOURCE');
      const n = Object.keys(ctx.objects).length;
      if (n) return fail('EBUSY', `the iommufd holds ${n} object${n > 1 ? 's' : ''}; the mode can change only while it is empty`);
      if (f.val64 > 1n) return fail('EINVAL', `val64 ${f.val64} must be 0 (user) or 1 (mm)`);
      ctx.accountMode = f.val64 === 1n ? 'mm' : 'user';
      return ok({ val64: f.val64 });
    }
    if (f.option_id === OPTION_IDS.HUGE_PAGES) {
      const io = ioasIn(ctx, f.object_id);
      if (typeof io === 'string') return fail('ENOENT', io);
      if (!set) return ok({ val64: dataOf(io).hugePages ? 1n : 0n });
      if (f.val64 > 1n) return fail('EINVAL', `val64 ${f.val64} must be 0 or 1`);
      if (f.val64 === 0n) {
        if (dataOf(io).hwpts.length && dataOf(io).areas.size) return fail('EINVAL', 'huge pages cannot be disabled while the IOAS has both domains and mappings');
        io.data.hugePages = false;
        const align = alignmentFor(d, ctx.id, io.id);
        if (align > dataOf(io).iovaAlignment) {
          for (const e of dataOf(io).areas.entries()) {
            const len = e.last - e.start + 1n;
            if (e.start % align || len % align || (e.value.pageOffset % plat(d).pageSize) % align)
              return fail('EADDRINUSE', `area ${fmtRange(e.start, e.last)} is not aligned to ${hex(align)}`);
          }
        }
        io.data.iovaAlignment = align;
      } else {
        io.data.hugePages = true;
        io.data.iovaAlignment = alignmentFor(d, ctx.id, io.id);
      }
      return ok({ val64: f.val64 });
    }
    return fail('EOPNOTSUPP', `unknown option_id ${f.option_id}`);
  },

  IOMMU_VFIO_IOAS(d: Draft<World>, i: InputOf<'IOMMU_VFIO_IOAS'>): Outcome {
    const ctx = iommufdPrologue(d, i);
    if (isOutcome(ctx)) return ctx;
    if (i.f.__reserved !== 0) return fail('EOPNOTSUPP', '__reserved must be 0');
    switch (i.f.vfio_ioas_op) {
      case VFIO_IOAS_OPS.GET:
        if (ctx.vfioIoas === null) return fail('ENODEV', 'no compatibility IOAS is set');
        return ok({ ioas_id: ctx.vfioIoas });
      case VFIO_IOAS_OPS.SET: {
        const io = ioasIn(ctx, i.f.ioas_id);
        if (typeof io === 'string') return fail('ENOENT', io);
        ctx.vfioIoas = io.id;
        return ok({ ioas_id: io.id });
      }
      case VFIO_IOAS_OPS.CLEAR:
        ctx.vfioIoas = null;
        return ok();
      default:
        return fail('EOPNOTSUPP', `unknown op ${i.f.vfio_ioas_op}`);
    }
  },

  ...hwHandlers,
};
