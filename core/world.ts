/*
 * world.ts: the shape of the whole model state (the World). The control plane
 * (processes, files, iommufd contexts and their objects, devices, groups) is small
 * plain data that immer drafts; large collections (memory extents, IOVA areas, page
 * tables, IOTLBs) are persistent class instances that immer stores as opaque values
 * and that are replaced, never mutated.
 *
 * Records keyed by integers iterate in ascending key order and records keyed by
 * names in insertion order: both are guaranteed by the language, and the model
 * relies on nothing else.
 */
import type { DeviceFlag } from '../events/index.js';
import type { Platform } from './platform.js';
import type { Memory } from './mem.js';
import type { IoasData } from './ioasData.js';
import type { PagesTable } from './pages.js';
import type { HwState } from '../hw/index.js';

export interface Proc {
  readonly pid: number;
  /** Which process this is among all that ever had this pid (pins remember it, not the pid). */
  readonly serial: number;
  readonly uid: number;
  readonly caps: readonly string[];
  /** RLIMIT_MEMLOCK in bytes. */
  readonly memlock: bigint;
  /** fd -> open file id. */
  readonly fds: Readonly<Record<number, number>>;
  readonly alive: boolean;
  /** mm->locked_vm in pages (MM accounting mode). */
  readonly lockedPages: number;
  /** mm->pinned_vm in pages (updated in every mode). */
  readonly pinnedPages: number;
}

export type FileKind =
  | { readonly kind: 'iommufd'; readonly ctx: number }
  | { readonly kind: 'vfio-cdev'; readonly dev: string; readonly bound: null | { readonly ctx: number; readonly devId: number; readonly ctxFile: number } }
  | { readonly kind: 'memfd'; readonly size: bigint }
  /** The selftest's access fd (IOMMU_TEST_OP_CREATE_ACCESS): closing it destroys the access. */
  | { readonly kind: 'test-access'; readonly ctx: number; readonly access: number };

export type OpenFile = FileKind & {
  readonly id: number;
  /** Number of fd-table slots (across processes) referring to this open file. */
  readonly refs: number;
};

/** The iommufd-side view of one iommu_group inside one ctx. */
export interface IGroup {
  readonly group: number;
  /** The HWPT the whole group is attached to, or null. */
  readonly hwpt: number | null;
  /** Device object IDs attached through this group, in attach order. */
  readonly attached: readonly number[];
}

export interface IoasObj {
  readonly type: 'ioas';
  readonly id: number;
  readonly data: IoasData;
}

export interface HwptPagingObj {
  readonly type: 'hwpt_paging';
  readonly id: number;
  readonly ioas: number;
  /** Created by automatic domain selection (freed with its last device). */
  readonly auto: boolean;
  readonly unit: string;
  /** The simulated hardware domain this HWPT owns. */
  readonly domain: number;
  readonly nestParent: boolean;
  readonly dirtyTracking: boolean;
  readonly enforceCoherency: boolean;
  /** Number of devices attached (each holds a reference). */
  readonly devices: number;
}

export interface DeviceObj {
  readonly type: 'device';
  readonly id: number;
  readonly dev: string;
  readonly group: number;
  /** HWPT ID this device is attached to, or null. */
  readonly attached: number | null;
}

/** One pin an access holds on one area's pages (a PinUser of that pages object). */
export interface AccessPinPiece {
  /** Start IOVA of the area pinned through (identifies the area within the access's IOAS). */
  readonly area: bigint;
  readonly pages: number;
  /** PinUser key on the pages object: `x:<access>:<item>:<area-iova-hex>`. */
  readonly key: string;
}

/** One iommufd_access_pin_pages() call still held by the driver (a selftest access item). */
export interface AccessPin {
  readonly item: number;
  readonly iova: bigint;
  readonly length: bigint;
  readonly pieces: readonly AccessPinPiece[];
}

export interface AccessObj {
  readonly type: 'access';
  readonly id: number;
  readonly ioas: number | null;
  readonly needsPin: boolean;
  /** Who created it: a VFIO emulated device's bind, or the selftest (IOMMU_TEST_OP_CREATE_ACCESS). */
  readonly driver: 'vfio' | 'selftest';
  /** Pins the driver holds, in pin order. */
  readonly pins: readonly AccessPin[];
  /** The next selftest access item ID (starts at 0, never reused). */
  readonly nextItem: number;
  /**
   * Model-level only: the driver ignores unmap notifications and keeps its pins, so
   * an UNMAP that meets them fails with EDEADLOCK (no trace operation can set this:
   * the selftest's mock driver and VFIO's emulated-device drivers always unpin).
   */
  readonly keepsPins: boolean;
}

/** The selftest's IOMMUFD_OBJ_SELFTEST (a mock device bound and attached by IOMMU_TEST_OP_MOCK_DOMAIN). */
export interface SelftestObj {
  readonly type: 'selftest';
  readonly id: number;
  /** The mock device's name (iommufd_mockN). */
  readonly dev: string;
  /** Its DEVICE object. */
  readonly idev: number;
}

export type Obj = IoasObj | HwptPagingObj | DeviceObj | AccessObj | SelftestObj;
export type ObjType = Obj['type'];

export interface Ctx {
  readonly id: number;
  /** The open file of /dev/iommu behind this ctx. */
  readonly file: number;
  readonly objects: Readonly<Record<number, Obj>>;
  readonly accountMode: 'user' | 'mm';
  readonly vfioIoas: number | null;
  readonly igroups: Readonly<Record<number, IGroup>>;
  /** Bound VFIO devices; each holds a reference on the ctx file (iommufd_ctx_get). */
  readonly boundDevices: number;
  /** iopt_pages objects (pinned-memory sources), shared between areas only by COPY. */
  readonly pages: PagesTable;
  readonly nextPages: number;
}

export type GroupDomain =
  | { readonly kind: 'default' }
  | { readonly kind: 'blocking' }
  | { readonly kind: 'hwpt'; readonly ctx: number; readonly hwpt: number; readonly domain: number };

export type GroupOwner = { readonly kind: 'iommufd'; readonly ctx: number };

export interface Group {
  readonly id: number;
  readonly unit: string;
  readonly devices: readonly string[];
  /** Number of DMA-ownership claims (kernel drivers or user claims). */
  readonly ownerCnt: number;
  readonly owner: GroupOwner | null;
  readonly domain: GroupDomain;
  /** Hardware domain id of the group's default (DMA-API) domain. */
  readonly defaultDomain: number;
  /** IOVA cursor of DMA-API allocations in the default domain (never reused). */
  readonly dmaNext: bigint;
}

export interface Device {
  readonly name: string;
  readonly unit: string;
  readonly group: number;
  readonly driver: string | null;
  /** N of /dev/vfio/devices/vfioN while vfio-pci is bound. */
  readonly cdev: number | null;
  readonly flags: readonly DeviceFlag[];
  /**
   * A device_remove ('device') or a vfio-pci driver_remove ('driver') is waiting for
   * the last VFIO fd of this device to close; the cdev node is already gone.
   */
  readonly removePending: 'device' | 'driver' | null;
  /** Kernel buffers the bound DMA-API driver mapped with dma_map (unmapped when it unbinds). */
  readonly dmaMaps: readonly { readonly iova: bigint; readonly length: bigint; readonly pa: bigint }[];
}

export interface UserAcct {
  /** user->locked_vm in pages (USER accounting mode). */
  readonly lockedPages: number;
}

export interface World {
  readonly platform: Platform;
  readonly procs: Readonly<Record<number, Proc>>;
  readonly files: Readonly<Record<number, OpenFile>>;
  readonly nextFile: number;
  readonly ctxs: Readonly<Record<number, Ctx>>;
  readonly nextCtx: number;
  readonly devices: Readonly<Record<string, Device>>;
  readonly groups: Readonly<Record<number, Group>>;
  /** vfioN -> device name. */
  readonly cdevs: Readonly<Record<number, string>>;
  readonly users: Readonly<Record<number, UserAcct>>;
  /** Processes created so far (the next one's serial) and the highest pid ever used. */
  readonly procSerial: number;
  readonly maxPid: number;
  readonly mem: Memory;
  readonly hw: HwState;
  /** Deliberate model bugs switched on (core/bugs.ts); absent in every real run. */
  readonly bugs?: readonly string[];
}

export type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * A shallow copy of a World for the non-immer write paths (DMA, the MAP/UNMAP working
 * copy). Built field by field so every copy has one V8 hidden class: a spread (`{...w}`)
 * of Worlds made by immer and by these paths turns megamorphic and costs ~1 µs.
 */
export function shallowWorld(w: World): Mutable<World> {
  const c: Mutable<World> = {
    platform: w.platform, procs: w.procs, files: w.files, nextFile: w.nextFile, ctxs: w.ctxs, nextCtx: w.nextCtx,
    devices: w.devices, groups: w.groups, cdevs: w.cdevs, users: w.users, procSerial: w.procSerial, maxPid: w.maxPid,
    mem: w.mem, hw: w.hw,
  };
  if (w.bugs !== undefined) c.bugs = w.bugs;
  return c;
}

/**
 * Writes every field of `from` into `to` (a shallow op's result back into the World an
 * in-place stepper owns): the same fields as shallowWorld, as plain stores, which cost a
 * fraction of Object.assign on a DMA-heavy replay (measured).
 */
export function assignWorld(to: Mutable<World>, from: World): void {
  to.platform = from.platform; to.procs = from.procs; to.files = from.files; to.nextFile = from.nextFile;
  to.ctxs = from.ctxs; to.nextCtx = from.nextCtx; to.devices = from.devices; to.groups = from.groups;
  to.cdevs = from.cdevs; to.users = from.users; to.procSerial = from.procSerial; to.maxPid = from.maxPid;
  to.mem = from.mem; to.hw = from.hw;
  if (from.bugs !== undefined) to.bugs = from.bugs;
}

/** A shallow copy of a ctx (one hidden class, as shallowWorld). */
export function shallowCtx(c: Ctx): Mutable<Ctx> {
  return {
    id: c.id, file: c.file, objects: c.objects, accountMode: c.accountMode, vfioIoas: c.vfioIoas, igroups: c.igroups,
    boundDevices: c.boundDevices, pages: c.pages, nextPages: c.nextPages,
  };
}

/** A shallow copy of a process record (one hidden class, as shallowWorld). */
export function shallowProc(p: Proc): Mutable<Proc> {
  return {
    pid: p.pid, serial: p.serial, uid: p.uid, caps: p.caps, memlock: p.memlock, fds: p.fds, alive: p.alive,
    lockedPages: p.lockedPages, pinnedPages: p.pinnedPages,
  };
}
