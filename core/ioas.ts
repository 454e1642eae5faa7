/*
 * ioas.ts: the IOAS data-plane ioctls (IOMMU_IOAS_MAP, UNMAP, COPY, IOVA_RANGES,
 * ALLOW_IOVAS, OPTION, VFIO_IOAS) and the HWPT ioctls that touch an IOAS.
 * IOMMU_IOAS_ALLOC lives with the object lifecycle in ctx.ts.
 */
import type { Draft } from 'immer';
import { fail, type InputOf, type Outcome, type OpName } from '../events/index.js';
import type { World } from './world.js';
import { ioctlPrologue, isOutcome } from './ioctl.js';

type DataPlaneOp =
  | 'IOMMU_IOAS_ALLOW_IOVAS' | 'IOMMU_IOAS_COPY' | 'IOMMU_IOAS_IOVA_RANGES' | 'IOMMU_IOAS_MAP' | 'IOMMU_IOAS_UNMAP'
  | 'IOMMU_OPTION' | 'IOMMU_VFIO_IOAS' | 'IOMMU_HWPT_ALLOC' | 'IOMMU_GET_HW_INFO' | 'IOMMU_HWPT_SET_DIRTY_TRACKING'
  | 'IOMMU_HWPT_GET_DIRTY_BITMAP';

function notYet<K extends DataPlaneOp & OpName>(op: K) {
  return (d: Draft<World>, i: InputOf<K>): Outcome => {
    const t = ioctlPrologue(d, i);
    if (isOutcome(t)) return t;
    return fail('ENOTTY', `${op} is not modelled in this build yet`);
  };
}

export const ioasHandlers = {
  IOMMU_IOAS_ALLOW_IOVAS: notYet('IOMMU_IOAS_ALLOW_IOVAS'),
  IOMMU_IOAS_COPY: notYet('IOMMU_IOAS_COPY'),
  IOMMU_IOAS_IOVA_RANGES: notYet('IOMMU_IOAS_IOVA_RANGES'),
  IOMMU_IOAS_MAP: notYet('IOMMU_IOAS_MAP'),
  IOMMU_IOAS_UNMAP: notYet('IOMMU_IOAS_UNMAP'),
  IOMMU_OPTION: notYet('IOMMU_OPTION'),
  IOMMU_VFIO_IOAS: notYet('IOMMU_VFIO_IOAS'),
  IOMMU_HWPT_ALLOC: notYet('IOMMU_HWPT_ALLOC'),
  IOMMU_GET_HW_INFO: notYet('IOMMU_GET_HW_INFO'),
  IOMMU_HWPT_SET_DIRTY_TRACKING: notYet('IOMMU_HWPT_SET_DIRTY_TRACKING'),
  IOMMU_HWPT_GET_DIRTY_BITMAP: notYet('IOMMU_HWPT_GET_DIRTY_BITMAP'),
};
