/*
 * process.ts: processes, their files and memory: spawn, open, close, mmap,
 * munmap, memfd_create, ftruncate, fork, exit, setrlimit, and ioctl by raw number.
 * A process exists from its first entry as uid 1000 with no capabilities and an
 * 8 MiB RLIMIT_MEMLOCK, unless `spawn` declared it first.
 *
 * Invariant: an fd refers to an open file that counts it in `refs`; exit closes
 * every fd in ascending order and frees the memory, so nothing a process held
 * outlives it except what the kernel keeps alive by reference (a bound device's
 * iommufd, pinned pages).
 */
import type { Draft } from 'immer';
import { MMAP_FLAGS, U64_MAX, fail, ok, type InputOf, type Outcome } from '../events/index.js';
import type { Proc, World } from './world.js';
import { closeFd, newFile } from './files.js';
import { ProcMem, cutRange, findVmaHole, slicePages, sliceVma, type PageExtent, type Vma } from './mem.js';
import { lookupFd } from './ioctl.js';
import { emptyPages } from './pages.js';

export const DEFAULT_MEMLOCK = 8n * 1024n * 1024n;

/** A new process with the defaults of a first use; it takes the next serial. */
export function newProc(d: Draft<World>, pid: number): Proc {
  const serial = d.procSerial++;
  if (pid > d.maxPid) d.maxPid = pid;
  return defaultProc(pid, serial);
}

export function defaultProc(pid: number, serial: number): Proc {
  return { pid, serial, uid: 1000, caps: [], memlock: DEFAULT_MEMLOCK, fds: {}, alive: true, lockedPages: 0, pinnedPages: 0 };
}

const PAGE = 4096n;
const MiB2 = 2n * 1024n * 1024n;
const pageAlign = (n: bigint) => ((n + PAGE - 1n) / PAGE) * PAGE;

/** Frees a process's page extents in a range (frames go back; pinned ones stay with their pins). */
function dropPages(d: Draft<World>, pid: number, start: bigint, length: bigint): void {
  const pm = d.mem.proc(pid);
  const cut = cutRange<PageExtent>(pm.pages, start, length, (p) => p.va, slicePages);
  let mem = d.mem.withProc(pid, new ProcMem(pm.vmas, cut.tree));
  for (const p of cut.removed) mem = mem.unmapFrames(p.pa, p.length);
  d.mem = mem;
}

export const processHandlers = {
  spawn(d: Draft<World>, i: InputOf<'spawn'>): Outcome {
    if (d.procs[i.pid]) return fail('EEXIST', `pid ${i.pid} already exists; spawn must come before its first use`);
    d.procs[i.pid] = {
      ...newProc(d, i.pid),
      uid: i.given.has('uid') ? i.f.uid : 1000,
      caps: [...i.f.caps],
      memlock: i.given.has('memlock') ? i.f.memlock : DEFAULT_MEMLOCK,
    };
    return ok();
  },

  open(d: Draft<World>, i: InputOf<'open'>): Outcome {
    let path = i.f.path;
    if (i.given.has('dev')) {
      const dev = d.devices[i.f.dev];
      if (!dev) return fail('ENOENT', `no device ${i.f.dev}`);
      if (dev.cdev === null) return fail('ENOENT', `${i.f.dev} has no VFIO cdev (vfio-pci is not bound; driver: ${dev.driver ?? 'none'})`);
      path = `/dev/vfio/devices/vfio${dev.cdev}`;
    }
    if (path === '/dev/iommu') {
      const ctxId = d.nextCtx++;
      const { fd, fileId } = newFile(d, i.pid, { kind: 'iommufd', ctx: ctxId });
      d.ctxs[ctxId] = { id: ctxId, file: fileId, objects: {}, accountMode: 'user', vfioIoas: null, igroups: {}, boundDevices: 0, pages: emptyPages(), nextPages: 1 };
      return ok({ fd });
    }
    const m = /^\/dev\/vfio\/devices\/vfio(\d+)$/.exec(path);
    if (m) {
      const name = d.cdevs[Number(m[1])];
      if (name === undefined) return fail('ENOENT', `${path} does not exist`);
      if (d.devices[name]!.removePending) return fail('ENODEV', `${name} is being unregistered`);
      const { fd } = newFile(d, i.pid, { kind: 'vfio-cdev', dev: name, bound: null });
      return ok({ fd }, `${path} is ${name}`);
    }
    if (path === '/dev/vfio/vfio' || /^\/dev\/vfio\/\d+$/.test(path))
      return fail('ENOENT', `${path}: the legacy VFIO container/group interface is not modelled yet (the model is a kernel without CONFIG_VFIO_GROUP)`);
    return fail('ENOENT', `no such file ${JSON.stringify(path)}`);
  },

  close(d: Draft<World>, i: InputOf<'close'>): Outcome {
    if (d.procs[i.pid]!.fds[i.f.fd] === undefined) return fail('EBADF', `fd ${i.f.fd} is not open in pid ${i.pid}`);
    closeFd(d, i.pid, i.f.fd);
    return ok();
  },

  memfd_create(d: Draft<World>, i: InputOf<'memfd_create'>): Outcome {
    const { fd } = newFile(d, i.pid, { kind: 'memfd', size: i.f.length });
    return ok({ fd });
  },

  ftruncate(d: Draft<World>, i: InputOf<'ftruncate'>): Outcome {
    const t = lookupFd(d, i.pid, i.f.fd);
    if (!t) return fail('EBADF', `fd ${i.f.fd} is not open`);
    if (t.file.kind !== 'memfd') return fail('EINVAL', `fd ${i.f.fd} is not a memory file`);
    (d.files[t.fileId] as { size: bigint }).size = i.f.length;
    return ok();
  },

  mmap(d: Draft<World>, i: InputOf<'mmap'>): Outcome {
    const prot = i.given.has('prot') ? i.f.prot : 3;
    const flags = i.given.has('flags') ? i.f.flags : MMAP_FLAGS.PRIVATE;
    const hugetlb = (flags & MMAP_FLAGS.HUGETLB) !== 0;
    if (i.f.length === 0n || i.f.length > U64_MAX - MiB2) return fail('EINVAL', `bad length ${i.f.length}`);
    if (i.given.has('file_fd')) {
      const t = lookupFd(d, i.pid, i.f.file_fd);
      if (!t) return fail('EBADF', `file_fd ${i.f.file_fd} is not open`);
      if (t.file.kind === 'vfio-cdev') {
        if (!t.file.bound) return fail('EINVAL', `${t.file.dev} is not bound to an iommufd: VFIO refuses mmap until the security context is set`);
        return fail('EINVAL', `MMIO regions of ${t.file.dev} are not modelled`);
      }
      if (t.file.kind !== 'memfd') return fail('ENODEV', `fd ${i.f.file_fd} cannot be mapped`);
    }
    const unit = hugetlb ? MiB2 : PAGE;
    if (hugetlb && i.f.length % MiB2 !== 0n) return fail('EINVAL', 'MAP_HUGETLB length must be a multiple of 2 MiB');
    const length = ((i.f.length + unit - 1n) / unit) * unit;
    const pm = d.mem.proc(i.pid);
    let addr: bigint;
    if (i.given.has('addr')) {
      if (i.f.addr % unit !== 0n) return fail('EINVAL', `addr 0x${i.f.addr.toString(16)} is not aligned to ${unit}`);
      addr = i.f.addr;
      // MAP_FIXED semantics: whatever was there is unmapped first.
      dropPages(d, i.pid, addr, length);
      const cur = d.mem.proc(i.pid);
      d.mem = d.mem.withProc(i.pid, new ProcMem(cutRange<Vma>(cur.vmas, addr, length, (v) => v.start, sliceVma).tree, cur.pages));
    } else addr = findVmaHole(pm, length, hugetlb);
    const after = d.mem.proc(i.pid);
    const vma: Vma = { start: addr, length, prot, hugetlb, shared: (flags & MMAP_FLAGS.SHARED) !== 0 };
    d.mem = d.mem.withProc(i.pid, new ProcMem(after.vmas.with(addr, vma), after.pages));
    return ok({ addr });
  },

  munmap(d: Draft<World>, i: InputOf<'munmap'>): Outcome {
    if (i.f.addr % PAGE !== 0n) return fail('EINVAL', `addr 0x${i.f.addr.toString(16)} is not page aligned`);
    if (i.f.length === 0n) return fail('EINVAL', 'length 0');
    const length = pageAlign(i.f.length);
    dropPages(d, i.pid, i.f.addr, length);
    const pm = d.mem.proc(i.pid);
    d.mem = d.mem.withProc(i.pid, new ProcMem(cutRange<Vma>(pm.vmas, i.f.addr, length, (v) => v.start, sliceVma).tree, pm.pages));
    return ok();
  },

  fork(d: Draft<World>, i: InputOf<'fork'>): Outcome {
    const parent = d.procs[i.pid]!;
    // A fresh pid, never one a dead process had: its pins may still be accounted to it.
    const child = d.maxPid + 1;
    const fds: Record<number, number> = {};
    for (const [fd, fileId] of Object.entries(parent.fds)) {
      fds[Number(fd)] = fileId;
      d.files[fileId]!.refs++;
    }
    d.procs[child] = { ...newProc(d, child), uid: parent.uid, caps: [...parent.caps], memlock: parent.memlock, fds };
    d.mem = d.mem.withProc(child, new ProcMem(d.mem.proc(i.pid).vmas, d.mem.proc(child).pages));
    return ok({ child });
  },

  exit(d: Draft<World>, i: InputOf<'exit'>): Outcome {
    for (const fd of Object.keys(d.procs[i.pid]!.fds).map(Number)) closeFd(d, i.pid, fd);
    dropPages(d, i.pid, 0n, U64_MAX);
    d.mem = d.mem.withProc(i.pid, null);
    delete d.procs[i.pid];
    return ok();
  },

  setrlimit(d: Draft<World>, i: InputOf<'setrlimit'>): Outcome {
    d.procs[i.pid]!.memlock = i.f.memlock;
    return ok();
  },

  ioctl(d: Draft<World>, i: InputOf<'ioctl'>): Outcome {
    const t = lookupFd(d, i.pid, i.f.fd);
    if (!t) return fail('EBADF', `fd ${i.f.fd} is not open in pid ${i.pid}`);
    if (t.file.kind === 'vfio-cdev' && !t.file.bound)
      return fail('EINVAL', `fd ${i.f.fd} (${t.file.dev}) is not bound to an iommufd yet: access is not granted`);
    // Numbers with a uAPI name are refused by the codec; what reaches here has no handler.
    return fail('ENOTTY', `ioctl 0x${i.f.cmd.toString(16)} is not known on a ${t.file.kind} file`);
  },
};

