/*
 * ops.ts: the operation vocabulary of trace format v1, one row per op, in the
 * order of ../shared/trace-format.md. This table is the contract: the codec reads
 * entries with it, the TypeScript types of every op's fields are derived from it,
 * and core/ must register a handler for every row (a missing one fails to compile).
 *
 * ioctl rows carry the uAPI's struct layout facts the kernel checks before a handler
 * runs: the ioctl number, the full struct size, and min_size (offsetofend of the last
 * field of the first merged layout). Output fields are listed in `out`; `expect` may
 * only name those.
 */
import {
  enum16, enum32, flags32, hex, oneOf, ranges, req, s32, str, strlist, u16, u32, u64,
  type Field,
} from './fields.js';

type Fields = Readonly<Record<string, Field<unknown>>>;

export type FdKind = 'iommufd' | 'vfio-device';

export interface IoctlInfo {
  /** Which kind of file the ioctl is defined on. */
  readonly on: FdKind;
  /** _IOC_NR of the ioctl (iommufd: 0x80+n; VFIO: VFIO_BASE(100)+n). */
  readonly nr: number;
  /** Full size of the kernel's struct (the default for size/argsz). */
  readonly size: number;
  /** Smallest size the kernel accepts. */
  readonly minSize: number;
}

export interface OpSchema<F extends Fields = Fields> {
  readonly fields: F;
  readonly out: readonly string[];
  readonly ioctl?: IoctlInfo;
  /** One line for `--help` and the README. */
  readonly doc: string;
}

const op = <F extends Fields>(doc: string, fields: F, out: readonly string[] = []): OpSchema<F> => ({ doc, fields, out });
type IoctlSchema<F extends Fields> = OpSchema<F> & { readonly ioctl: IoctlInfo };
const iommufd = <F extends Fields>(nr: number, size: number, minSize: number, doc: string, fields: F, out: readonly string[] = []): IoctlSchema<F> =>
  ({ doc, fields, out, ioctl: { on: 'iommufd', nr, size, minSize } });
const vfio = <F extends Fields>(nr: number, size: number, minSize: number, doc: string, fields: F, out: readonly string[] = []): IoctlSchema<F> =>
  ({ doc, fields, out, ioctl: { on: 'vfio-device', nr, size, minSize } });

export const IOAS_MAP_FLAGS = { FIXED_IOVA: 1, WRITEABLE: 2, READABLE: 4 } as const;
export const HWPT_ALLOC_FLAGS = { NEST_PARENT: 1, DIRTY_TRACKING: 2, FAULT_ID_VALID: 4, PASID: 8 } as const;
export const OPTION_IDS = { RLIMIT_MODE: 0, HUGE_PAGES: 1 } as const;
export const OPTION_OPS = { SET: 0, GET: 1 } as const;
export const VFIO_IOAS_OPS = { GET: 0, SET: 1, CLEAR: 2 } as const;
export const HWPT_DATA_TYPES = { NONE: 0, VTD_S1: 1, ARM_SMMUV3: 2, SELFTEST: 0xdead } as const;
/** IOMMU_TEST_OP_* (drivers/iommu/iommufd/iommufd_test.h), the modelled ones. */
export const TEST_OPS = {
  ADD_RESERVED: 1, MOCK_DOMAIN: 2, MD_CHECK_MAP: 3, MD_CHECK_REFS: 4, CREATE_ACCESS: 5, DESTROY_ACCESS_PAGES: 6,
  ACCESS_PAGES: 7, ACCESS_RW: 8, SET_TEMP_MEMORY_LIMIT: 9, MOCK_DOMAIN_REPLACE: 10, ACCESS_REPLACE_IOAS: 11,
  MOCK_DOMAIN_FLAGS: 12, DIRTY: 13, MD_CHECK_IOTLB: 14,
} as const;
/** MOCK_FLAGS_DEVICE_* (dev_flags of MOCK_DOMAIN_FLAGS). */
export const MOCK_DEVICE_FLAGS = { NO_DIRTY: 1, HUGE_IOVA: 2, PASID: 4 } as const;
/**
 * The `flags` of the selftest's union members: CREATE_ACCESS (NEEDS_PIN_PAGES = 1),
 * ACCESS_PAGES (WRITE = 1, SYZ) and ACCESS_RW (WRITE = 1, SLOW_PATH = 4, SYZ).
 * NEEDS_PIN_PAGES and WRITE share bit 0; each op reads the bit its own way.
 */
export const TEST_ACCESS_FLAGS = { NEEDS_PIN_PAGES: 1, WRITE: 1, SLOW_PATH: 4, SYZ: 0x10000 } as const;
export const MMAP_PROT = { READ: 1, WRITE: 2, EXEC: 4 } as const;
export const MMAP_FLAGS = { SHARED: 1, PRIVATE: 2, FIXED: 0x10, HUGETLB: 0x40000, POPULATE: 0x8000 } as const;

/**
 * Device properties a trace can give to `device_add` (capabilities of the device
 * and of its IOMMU path, as the kernel would discover them).
 */
export const DEVICE_FLAGS = [
  'NON_COHERENT', // IOMMU lacks IOMMU_CAP_CACHE_COHERENCY: bind fails EINVAL
  'NO_ENFORCE_COHERENCY', // lacks IOMMU_CAP_ENFORCE_CACHE_COHERENCY (no snoop control)
  'UNSAFE_MSI', // no MSI isolation: bind fails EPERM (allow_unsafe_interrupts off)
  'REQUIRE_DIRECT', // has an IOMMU_RESV_DIRECT region: cannot be user-owned (EINVAL)
  'NO_DIRTY_TRACKING', // the IOMMU path lacks IOMMU_CAP_DIRTY_TRACKING
  'HUGE_IOVA', // selftest mock: 1 MiB IO pages
  'PASID', // PASID capable
  'EMULATED', // an mdev-style emulated device: bind creates an ACCESS
] as const;
export type DeviceFlag = (typeof DEVICE_FLAGS)[number];

export const OPS = {
  // --- platform and kernel drivers ---
  device_add: op('hot-plug a device into an IOMMU group', {
    dev: req(str), iommu: str, group: req(u32), flags: strlist(DEVICE_FLAGS),
  }),
  device_remove: op('hot-unplug a device (pending while a VFIO user holds it)', { dev: req(str) }),
  driver_probe: op('bind a kernel driver to a device', { dev: req(str), driver: req(str) }),
  driver_remove: op("unbind the device's kernel driver", { dev: req(str) }),
  dma: op('a DMA request from a device, translated by the simulated IOMMU', {
    dev: req(str), iova: u64, length: u64, dir: req(oneOf(['read', 'write'])), pasid: u32,
  }, ['pa', 'owner', 'va']),
  dma_map: op('a kernel driver maps a kernel buffer through the DMA API (default domain)', {
    dev: req(str), length: u64,
  }, ['iova']),

  // --- processes, files, memory ---
  spawn: op('declare a process before its first use', { uid: u32, caps: strlist(['IPC_LOCK', 'SYS_RESOURCE', 'SYS_ADMIN', 'SYS_RAWIO']), memlock: u64 }),
  open: op('open a device node: /dev/iommu, /dev/vfio/devices/vfioN (or dev: shorthand)', { path: str, dev: str }, ['fd']),
  close: op('close a file descriptor', { fd: s32 }),
  mmap: op('map memory into the process', {
    length: u64, addr: u64, prot: flags32(MMAP_PROT), flags: flags32(MMAP_FLAGS), file_fd: s32, offset: u64,
  }, ['addr']),
  memfd_create: op('create an anonymous memory file', { length: u64 }, ['fd']),
  ftruncate: op('set the size of a memory file', { fd: s32, length: u64 }),
  munmap: op('unmap process memory', { addr: u64, length: u64 }),
  fork: op('fork the process (fds shared, memory copy-on-write)', {}, ['child']),
  exit: op('the process ends; its fds close and its memory goes', {}),
  setrlimit: op('set RLIMIT_MEMLOCK (bytes)', { memlock: u64 }),
  ioctl: op('an ioctl by raw number', { fd: s32, cmd: u32, arg: u64 }, ['ret']),

  // --- iommufd ioctls (include/uapi/linux/iommufd.h) ---
  IOMMU_DESTROY: iommufd(0x80, 8, 8, 'destroy an object by ID', { fd: s32, id: u32 }),
  IOMMU_IOAS_ALLOC: iommufd(0x81, 12, 12, 'allocate an I/O address space', { fd: s32, flags: u32 }, ['out_ioas_id']),
  IOMMU_IOAS_ALLOW_IOVAS: iommufd(0x82, 24, 24, 'replace the allowed IOVA list', {
    fd: s32, ioas_id: u32, num_iovas: u32, __reserved: u32, allowed_iovas: ranges,
  }),
  IOMMU_IOAS_COPY: iommufd(0x83, 40, 40, 'map the pages of one IOAS range into another', {
    fd: s32, flags: flags32(IOAS_MAP_FLAGS), dst_ioas_id: u32, src_ioas_id: u32, length: u64, dst_iova: u64, src_iova: u64,
  }, ['dst_iova']),
  IOMMU_IOAS_IOVA_RANGES: iommufd(0x84, 32, 32, 'query the usable IOVA ranges', {
    fd: s32, ioas_id: u32, num_iovas: u32, __reserved: u32,
  }, ['num_iovas', 'allowed_iovas', 'out_iova_alignment']),
  IOMMU_IOAS_MAP: iommufd(0x85, 40, 40, 'map user memory into an IOAS', {
    fd: s32, flags: flags32(IOAS_MAP_FLAGS), ioas_id: u32, __reserved: u32, user_va: u64, length: u64, iova: u64,
  }, ['iova']),
  IOMMU_IOAS_UNMAP: iommufd(0x86, 24, 24, 'unmap whole areas from an IOAS', { fd: s32, ioas_id: u32, iova: u64, length: u64 }, ['length']),
  IOMMU_OPTION: iommufd(0x87, 24, 24, 'get or set an option', {
    fd: s32, option_id: enum32(OPTION_IDS), option_op: enum16(OPTION_OPS), __reserved: u16, object_id: u32, val64: u64,
  }, ['val64']),
  IOMMU_VFIO_IOAS: iommufd(0x88, 12, 12, 'get, set or clear the VFIO compatibility IOAS', {
    fd: s32, ioas_id: u32, vfio_ioas_op: enum16(VFIO_IOAS_OPS), __reserved: u16,
  }, ['ioas_id']),
  IOMMU_HWPT_ALLOC: iommufd(0x89, 48, 24, 'allocate a hardware page table (domain)', {
    fd: s32, flags: flags32(HWPT_ALLOC_FLAGS), dev_id: u32, pt_id: u32, __reserved: u32,
    data_type: enum32(HWPT_DATA_TYPES), data_len: u32, data_uptr: u64, fault_id: u32, __reserved2: u32,
  }, ['out_hwpt_id']),
  IOMMU_GET_HW_INFO: iommufd(0x8a, 40, 32, 'query the IOMMU behind a device', {
    fd: s32, flags: flags32({ INPUT_TYPE: 1 }), dev_id: u32, data_len: u32, data_uptr: u64, in_data_type: u32,
    __reserved: u32,
  }, ['data_len', 'out_data_type', 'out_max_pasid_log2', 'out_capabilities', 'data']),
  IOMMU_HWPT_SET_DIRTY_TRACKING: iommufd(0x8b, 16, 16, 'enable or disable dirty tracking', {
    fd: s32, flags: flags32({ ENABLE: 1 }), hwpt_id: u32, __reserved: u32,
  }),
  IOMMU_HWPT_GET_DIRTY_BITMAP: iommufd(0x8c, 48, 48, 'read (and clear) dirty bits', {
    fd: s32, hwpt_id: u32, flags: flags32({ NO_CLEAR: 1 }), __reserved: u32, iova: u64, length: u64, page_size: u64, data: u64,
  }, ['bitmap']),

  // --- VFIO device cdev ioctls (include/uapi/linux/vfio.h) ---
  VFIO_DEVICE_BIND_IOMMUFD: vfio(118, 16, 16, 'bind a VFIO device to an iommufd (claims DMA ownership)', {
    fd: s32, flags: u32, iommufd: s32,
  }, ['out_devid']),
  VFIO_DEVICE_ATTACH_IOMMUFD_PT: vfio(119, 16, 12, 'attach (or replace) the device to an IOAS or HWPT', {
    fd: s32, flags: flags32({ PASID: 1 }), pt_id: u32, pasid: u32,
  }, ['pt_id']),
  VFIO_DEVICE_DETACH_IOMMUFD_PT: vfio(120, 12, 8, 'detach the device from its page table', {
    fd: s32, flags: flags32({ PASID: 1 }), pasid: u32,
  }),

  // --- the kernel selftest (drivers/iommu/iommufd/iommufd_test.h; CONFIG_IOMMUFD_TEST) ---
  // struct iommu_test_cmd {size, op, id, __reserved, union {...}, last}: the union
  // members' fields are flattened; a field clashing with the command's own is prefixed
  // with its member's name (check_iotlb.id -> check_iotlb_id). DIRTY reads a bitmap
  // from user memory at `uptr`; the model keeps no memory contents, so the trace gives
  // those bytes as `dirty_bitmap` (hex, memory order: bit i is bit i%8 of byte i/8).
  IOMMU_TEST_CMD: iommufd(0xa0, 72, 68, 'a kernel selftest command (selftest-mock platform only)', {
    fd: s32, test_op: enum32(TEST_OPS), id: u32, __reserved: u32,
    start: u64, length: u64, iova: u64, uptr: u64, refs: u32,
    dev_flags: flags32(MOCK_DEVICE_FLAGS), pt_id: u32, flags: flags32(TEST_ACCESS_FLAGS),
    access_pages_id: u32, ioas_id: u32, limit: u32, check_iotlb_id: u32, iotlb: u32,
    page_size: u64, dirty_bitmap: hex,
  }, ['out_stdev_id', 'out_hwpt_id', 'out_idev_id', 'pt_id', 'out_access_fd', 'out_access_pages_id', 'out_nr_dirty']),
} as const satisfies Readonly<Record<string, OpSchema>>;

export type OpName = keyof typeof OPS;
export const OP_NAMES = Object.keys(OPS) as OpName[];

/** The 2021 RFC names, accepted as aliases of their merged successors. */
export const OP_ALIASES: Readonly<Record<string, OpName>> = {
  IOMMU_IOASID_ALLOC: 'IOMMU_IOAS_ALLOC',
  IOMMU_IOASID_FREE: 'IOMMU_DESTROY',
  IOMMU_MAP_DMA: 'IOMMU_IOAS_MAP',
  IOMMU_UNMAP_DMA: 'IOMMU_IOAS_UNMAP',
  IOMMU_DEVICE_GET_INFO: 'IOMMU_GET_HW_INFO',
  VFIO_DEVICE_ATTACH_IOASID: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT',
  VFIO_DEVICE_DETACH_IOASID: 'VFIO_DEVICE_DETACH_IOMMUFD_PT',
};

export function isOpName(s: string): s is OpName {
  return Object.prototype.hasOwnProperty.call(OPS, s);
}

/** The full ioctl number (_IO(';', nr)) of an ioctl op, as `ioctl` entries give it. */
export function ioctlNumber(info: IoctlInfo): number {
  return (0x3b << 8) | info.nr;
}

type ValueOf<F> = F extends Field<infer T> ? T : never;
/** The resolved fields of an op: every field present (absent ones are zero). */
export type FieldsOf<K extends OpName> = { readonly [P in keyof (typeof OPS)[K]['fields']]: ValueOf<(typeof OPS)[K]['fields'][P]> };
