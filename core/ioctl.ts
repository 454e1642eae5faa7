/*
 * ioctl.ts: what happens to an ioctl before its handler runs, in the kernel's
 * order: the fd must be open (EBADF); the file decides who answers (iommufd's
 * dispatch, the VFIO device cdev, or nobody: ENOTTY); a NULL argument faults
 * (EFAULT); then size rules (iommufd: size < min_size EINVAL, non-zero bytes past the
 * kernel struct E2BIG; VFIO: argsz < minsz EINVAL).
 */
import type { Draft } from 'immer';
import { OPS, fail, isOutcome, type InputOf, type OpName, type Outcome } from '../events/index.js';
import type { Ctx, OpenFile, World } from './world.js';
import { peek } from './peek.js';

export type IoctlOp = { [K in OpName]: (typeof OPS)[K] extends { ioctl: object } ? K : never }[OpName];

export interface FdTarget {
  readonly fileId: number;
  readonly file: OpenFile;
}

/** A pure read (core/peek.ts): the file returned is the current value, not a draft; write through `d.files[fileId]`. */
export function lookupFd(w: Draft<World> | World, pid: number, fd: number): FdTarget | null {
  const cur = peek(w) as World;
  const p = peek(peek(cur.procs)[pid]);
  const fileId = p === undefined ? undefined : peek(p.fds)[fd];
  if (fileId === undefined) return null;
  const file = peek(peek(cur.files)[fileId]);
  return file ? { fileId, file: file as OpenFile } : null;
}

/**
 * Runs the generic checks of an ioctl. Returns the target file, or the Outcome the
 * kernel gives before any handler sees the call.
 */
export function ioctlPrologue<K extends IoctlOp>(w: Draft<World>, i: InputOf<K>): FdTarget | Outcome {
  const info = OPS[i.op].ioctl;
  const fd = (i.f as { fd: number }).fd;
  const t = lookupFd(w, i.pid, fd);
  if (!t) return fail('EBADF', `fd ${fd} is not open in pid ${i.pid}`);
  const kind = t.file.kind;
  if (info.on === 'iommufd') {
    if (kind === 'vfio-cdev') {
      // vfio_device_fops_unl_ioctl: unknown commands go to the driver only after bind.
      if (!t.file.bound) return fail('EINVAL', `fd ${fd} is a VFIO device not yet bound to an iommufd; only VFIO_DEVICE_BIND_IOMMUFD is allowed`);
      return fail('ENOTTY', `${i.op} is an iommufd ioctl; fd ${fd} is a VFIO device (vfio-pci does not know it)`);
    }
    if (kind !== 'iommufd') return fail('ENOTTY', `fd ${fd} is a ${kind}, which has no ioctls`);
    if (i.argpNull) return fail('EFAULT', 'NULL argument pointer: reading size faults');
    if (i.size < info.minSize) return fail('EINVAL', `size ${i.size} is below the minimum ${info.minSize} for ${i.op}`);
    if (i.trailing && i.trailing.some((b) => b !== 0))
      return fail('E2BIG', `non-zero bytes after the ${info.size}-byte struct the kernel knows`);
    return t;
  }
  if (kind === 'iommufd')
    return fail('ENOTTY', `${i.op} is a VFIO device ioctl; the iommufd's VFIO compatibility layer does not know it`);
  if (kind !== 'vfio-cdev') return fail('ENOTTY', `fd ${fd} is a ${kind}, which has no ioctls`);
  if (i.op !== 'VFIO_DEVICE_BIND_IOMMUFD' && !t.file.bound)
    return fail('EINVAL', `fd ${fd} (${t.file.dev}) is not bound to an iommufd yet: access is not granted`);
  if (i.argpNull) return fail('EFAULT', 'NULL argument pointer: copy_from_user faults');
  if (i.size < info.minSize) return fail('EINVAL', `argsz ${i.size} is below minsz ${info.minSize} for ${i.op}`);
  return t;
}

/** The iommufd context behind an open /dev/iommu file. */
export function ctxOfFile(d: Draft<World>, fileId: number): Draft<Ctx> {
  const f = peek(peek(d).files)[fileId]!;
  if (f.kind !== 'iommufd') throw new Error(`file ${fileId} is not an iommufd`);
  return d.ctxs[f.ctx]!;
}

/** The generic checks of an iommufd ioctl, then the context it acts on. */
export function iommufdPrologue<K extends IoctlOp>(d: Draft<World>, i: InputOf<K>): Draft<Ctx> | Outcome {
  const t = ioctlPrologue(d, i);
  return isOutcome(t) ? t : ctxOfFile(d, t.fileId);
}
