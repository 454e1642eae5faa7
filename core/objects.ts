/*
 * objects.ts: the per-iommufd object table (iommufd_ctx->objects): lowest-free ID
 * allocation from 1, typed lookup (ENOENT for a missing ID or one of another type,
 * as iommufd_get_object answers), and the reasons an object cannot be destroyed.
 *
 * The kernel counts `users`; the model derives the same answers from the object
 * graph itself, so a busy object can always say who holds it.
 */
import type { Ctx, Obj, ObjType } from './world.js';

/** xa_alloc with XA_FLAGS_ALLOC1: the lowest free ID, starting at 1. */
export function allocId(ctx: { readonly objects: Readonly<Record<number, unknown>> }): number {
  let id = 1;
  while (ctx.objects[id] !== undefined) id++;
  return id;
}

const NAMES: Readonly<Record<ObjType, string>> = {
  ioas: 'IOAS',
  hwpt_paging: 'HWPT_PAGING',
  device: 'DEVICE',
  access: 'ACCESS',
  selftest: 'SELFTEST',
};
export const objName = (o: Obj): string => `${NAMES[o.type]} ${o.id}`;

export function getObj<T extends ObjType>(ctx: Ctx, id: number, type: T): Extract<Obj, { type: T }> | string {
  const o = ctx.objects[id];
  if (!o) return `no object with ID ${id} in this iommufd`;
  if (o.type !== type) return `object ${id} is a ${NAMES[o.type]}, not an ${NAMES[type]}`;
  return o as Extract<Obj, { type: T }>;
}

/** Why `o` cannot be destroyed now (IOMMU_DESTROY would get EBUSY), or null. */
export function busyReason(o: Obj): string | null {
  switch (o.type) {
    case 'device':
      return `${objName(o)} belongs to the VFIO driver; it goes away only when its device fd is closed`;
    case 'access':
      return `${objName(o)} belongs to its ${o.driver === 'selftest' ? 'selftest access fd' : 'emulated-device driver'}`;
    case 'selftest':
      return null;
    case 'ioas': {
      if (o.data.hwpts.length) return `${objName(o)} is used by HWPT ${o.data.hwpts.join(', ')}`;
      if (o.data.accesses.length) return `${objName(o)} has access ${o.data.accesses.join(', ')} attached`;
      return null;
    }
    case 'hwpt_paging':
      if (o.devices > 0) return `${objName(o)} has ${o.devices} attached device${o.devices > 1 ? 's' : ''}`;
      return null;
  }
}
