/*
 * files.ts: fd tables and open files. An open file lives while any fd refers to
 * it; its release runs the kernel's release path: a VFIO device fd unbinds its
 * device, an iommufd destroys its objects leaf-first, but only once no bound
 * device still holds the ctx (a bound device keeps its iommufd alive).
 */
import type { Draft } from 'immer';
import type { FileKind, World } from './world.js';
import { unbindDevice } from './vfio.js';
import { releaseCtx } from './ctx.js';
import { finishPendingRemoval } from './device.js';
import { releaseTestAccess } from './selftest.js';

/** The lowest free fd of a process (0-2 are taken by stdio). */
export function lowestFreeFd(d: Draft<World>, pid: number): number {
  const fds = d.procs[pid]!.fds;
  let fd = 3;
  while (fds[fd] !== undefined) fd++;
  return fd;
}

export function newFile(d: Draft<World>, pid: number, kind: FileKind): { fd: number; fileId: number } {
  const fileId = d.nextFile++;
  d.files[fileId] = { ...kind, id: fileId, refs: 1 } as Draft<World>['files'][number];
  const fd = lowestFreeFd(d, pid);
  d.procs[pid]!.fds[fd] = fileId;
  return { fd, fileId };
}

/** Drops one fd; releases the open file when it was the last reference. */
export function closeFd(d: Draft<World>, pid: number, fd: number): void {
  const p = d.procs[pid]!;
  const fileId = p.fds[fd]!;
  delete p.fds[fd];
  const f = d.files[fileId]!;
  f.refs--;
  if (f.refs === 0) releaseFile(d, fileId);
}

export function releaseFile(d: Draft<World>, fileId: number): void {
  const f = d.files[fileId]!;
  switch (f.kind) {
    case 'vfio-cdev': {
      const dev = f.dev;
      if (f.bound) unbindDevice(d, fileId);
      delete d.files[fileId];
      finishPendingRemoval(d, dev);
      return;
    }
    case 'iommufd': {
      const ctx = d.ctxs[f.ctx]!;
      delete d.files[fileId];
      if (ctx.boundDevices === 0) releaseCtx(d, ctx.id);
      return;
    }
    case 'memfd':
      delete d.files[fileId];
      return;
    case 'test-access':
      releaseTestAccess(d, fileId);
      return;
  }
}
