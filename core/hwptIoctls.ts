/*
 * hwptIoctls.ts: the HWPT and hardware-information ioctls: IOMMU_HWPT_ALLOC (manual
 * paging HWPTs; NEST_PARENT and DIRTY_TRACKING flags), IOMMU_GET_HW_INFO,
 * IOMMU_HWPT_SET_DIRTY_TRACKING and IOMMU_HWPT_GET_DIRTY_BITMAP
 * (drivers/iommu/iommufd/hw_pagetable.c, device.c).
 *
 * Decisions: nested HWPTs (a paging parent or a vIOMMU as pt_id), fault queues and
 * PASID-capable domains are not modelled; those requests answer EOPNOTSUPP or
 * ENOENT as a kernel without the driver op would, and the reason says so.
 */
import type { Draft } from 'immer';
import { HWPT_ALLOC_FLAGS, HWPT_DATA_TYPES, U64_MAX, fail, isOutcome, ok, type InputOf, type Outcome } from '../events/index.js';
import type { Ctx, HwptPagingObj, IoasObj, World } from './world.js';
import { iommufdPrologue } from './ioctl.js';
import { getObj } from './objects.js';
import { hwInfoBuffer, hwInfoStruct } from './hwInfo.js';
import { addHwptToIoas, allocHwpt, deviceDirtyCapable } from './hwpt.js';
import { hwReadDirty, hwSetDirtyTracking } from './hwsync.js';
import { plat } from './peek.js';

const KNOWN = HWPT_ALLOC_FLAGS.NEST_PARENT | HWPT_ALLOC_FLAGS.DIRTY_TRACKING | HWPT_ALLOC_FLAGS.FAULT_ID_VALID | HWPT_ALLOC_FLAGS.PASID;


/** Per-format GET_HW_INFO facts: the driver's info type and struct length. */
const HW_INFO: Readonly<Record<string, { type: number; len: number }>> = {
  'vtd-sl': { type: 1, len: 24 }, // IOMMU_HW_INFO_TYPE_INTEL_VTD, struct iommu_hw_info_vtd
  'arm-lpae-s2': { type: 2, len: 40 }, // IOMMU_HW_INFO_TYPE_ARM_SMMUV3, struct iommu_hw_info_arm_smmuv3
  mock: { type: 0xfeedbeef, len: 8 }, // IOMMU_HW_INFO_TYPE_SELFTEST, struct iommu_test_hw_info
};

function hwptPaging(ctx: Draft<Ctx>, id: number): Draft<HwptPagingObj> | string {
  const o = getObj(ctx as unknown as Ctx, id, 'hwpt_paging');
  return typeof o === 'string' ? o : (ctx.objects[id] as Draft<HwptPagingObj>);
}

export const hwHandlers = {
  IOMMU_HWPT_ALLOC(d: Draft<World>, i: InputOf<'IOMMU_HWPT_ALLOC'>): Outcome {
    const ctx = iommufdPrologue(d, i);
    if (isOutcome(ctx)) return ctx;
    const f = i.f;
    if (f.__reserved !== 0 || f.__reserved2 !== 0) return fail('EOPNOTSUPP', '__reserved fields must be 0');
    if ((f.data_type === HWPT_DATA_TYPES.NONE) !== (f.data_len === 0))
      return fail('EINVAL', 'data_len must be 0 exactly when data_type is NONE');
    const idev = getObj(ctx as unknown as Ctx, f.dev_id, 'device');
    if (typeof idev === 'string') return fail('ENOENT', idev);
    const pt = ctx.objects[f.pt_id];
    if (!pt) return fail('EINVAL', `pt_id ${f.pt_id} does not exist (HWPT_ALLOC answers EINVAL, not ENOENT)`);
    const dev = d.devices[idev.dev]!;
    if (pt.type === 'hwpt_paging') return fail('EOPNOTSUPP', 'nested HWPTs (a paging HWPT as parent) are not modelled: the driver has no domain_alloc_nested here');
    if (pt.type !== 'ioas') return fail('EINVAL', `pt_id ${f.pt_id} is a ${pt.type}, not an IOAS or a paging HWPT`);
    if (f.flags & ~KNOWN) return fail('EOPNOTSUPP', `unknown flag bits 0x${(f.flags & ~KNOWN).toString(16)}`);
    if (f.data_type !== HWPT_DATA_TYPES.NONE) return fail('EOPNOTSUPP', 'driver-specific data for a paging domain is not supported');
    if ((f.flags & HWPT_ALLOC_FLAGS.DIRTY_TRACKING) && !deviceDirtyCapable(d, dev))
      return fail('EOPNOTSUPP', `${dev.name}'s IOMMU lacks IOMMU_CAP_DIRTY_TRACKING`);
    if (f.flags & HWPT_ALLOC_FLAGS.PASID) return fail('EOPNOTSUPP', 'PASID-capable domains are not modelled');
    const id = allocHwpt(d, ctx.id, pt.id, dev, {
      auto: false,
      nestParent: (f.flags & HWPT_ALLOC_FLAGS.NEST_PARENT) !== 0,
      dirtyTracking: (f.flags & HWPT_ALLOC_FLAGS.DIRTY_TRACKING) !== 0,
    });
    const add = addHwptToIoas(d, ctx.id, id);
    if (add) return fail(add.errno, add.reason);
    if (f.flags & HWPT_ALLOC_FLAGS.FAULT_ID_VALID) return fail('ENOENT', `fault_id ${f.fault_id} is not a FAULT object (fault queues are not modelled)`);
    return ok({ out_hwpt_id: id });
  },

  IOMMU_GET_HW_INFO(d: Draft<World>, i: InputOf<'IOMMU_GET_HW_INFO'>): Outcome {
    const ctx = iommufdPrologue(d, i);
    if (isOutcome(ctx)) return ctx;
    const f = i.f;
    if (f.flags & ~1) return fail('EOPNOTSUPP', `unknown flag bits 0x${(f.flags & ~1).toString(16)}`);
    if (f.__reserved !== 0) return fail('EOPNOTSUPP', '__reserved must be 0');
    const idev = getObj(ctx as unknown as Ctx, f.dev_id, 'device');
    if (typeof idev === 'string') return fail('ENOENT', idev);
    const dev = d.devices[idev.dev]!;
    const unit = plat(d).units.find((u) => u.name === dev.unit)!;
    const info = HW_INFO[unit.format]!;
    if ((f.flags & 1) && f.in_data_type !== info.type)
      return fail('EOPNOTSUPP', `the driver reports info type ${info.type}, not ${f.in_data_type}`);
    const dirty = deviceDirtyCapable(d, dev);
    // The kernel copies min(data_len, its length) bytes and zero-fills the rest of the buffer.
    const data = hwInfoBuffer(hwInfoStruct(unit, dev.flags, dirty), f.data_len);
    return ok({
      ...(f.data_len > 0 ? { data } : {}),
      data_len: info.len,
      out_data_type: info.type,
      out_max_pasid_log2: dev.flags.includes('PASID') ? 20 : 0,
      out_capabilities: dirty ? 1n : 0n,
    });
  },

  IOMMU_HWPT_SET_DIRTY_TRACKING(d: Draft<World>, i: InputOf<'IOMMU_HWPT_SET_DIRTY_TRACKING'>): Outcome {
    const ctx = iommufdPrologue(d, i);
    if (isOutcome(ctx)) return ctx;
    if (i.f.flags & ~1) return fail('EOPNOTSUPP', `unknown flag bits 0x${(i.f.flags & ~1).toString(16)}`);
    if (i.f.__reserved !== 0) return fail('EOPNOTSUPP', '__reserved must be 0');
    const h = hwptPaging(ctx, i.f.hwpt_id);
    if (typeof h === 'string') return fail('ENOENT', h);
    if (!h.dirtyTracking) return fail('EOPNOTSUPP', `HWPT ${h.id} was not allocated with DIRTY_TRACKING: its domain has no dirty ops`);
    hwSetDirtyTracking(d, h.domain, (i.f.flags & 1) !== 0);
    return ok();
  },

  IOMMU_HWPT_GET_DIRTY_BITMAP(d: Draft<World>, i: InputOf<'IOMMU_HWPT_GET_DIRTY_BITMAP'>): Outcome {
    const ctx = iommufdPrologue(d, i);
    if (isOutcome(ctx)) return ctx;
    const f = i.f;
    if (f.flags & ~1) return fail('EOPNOTSUPP', `unknown flag bits 0x${(f.flags & ~1).toString(16)}`);
    if (f.__reserved !== 0) return fail('EOPNOTSUPP', '__reserved must be 0');
    const h = hwptPaging(ctx, f.hwpt_id);
    if (typeof h === 'string') return fail('ENOENT', h);
    const end = f.iova + f.length;
    if (f.length === 0n || end - 1n > U64_MAX) return fail('EOVERFLOW', 'iova + length - 1 overflows');
    const io = ctx.objects[h.ioas] as unknown as IoasObj;
    const align = io.data.iovaAlignment;
    if (f.iova % align || end % align) return fail('EINVAL', `iova and iova+length must be multiples of the IOAS alignment 0x${align.toString(16)}`);
    if (f.page_size === 0n) return fail('EINVAL', 'page_size 0');
    if (f.iova % f.page_size || end % f.page_size) return fail('EINVAL', 'iova and iova+length must be multiples of page_size');
    if (!h.dirtyTracking) return fail('EOPNOTSUPP', `HWPT ${h.id} has no dirty ops`);
    const ranges = hwReadDirty(d, h.domain, f.iova, f.length, f.page_size, (f.flags & 1) === 0);
    let bitmap = 0n;
    for (const r of ranges) {
      const from = (r.iova - f.iova) / f.page_size;
      const n = r.length / f.page_size;
      bitmap |= ((1n << n) - 1n) << from;
    }
    return ok({ bitmap });
  },
};
