/*
 * platform.ts: the simulated machines. A platform lists IOMMU units (page-table
 * format, page sizes, aperture, reserved regions, capabilities) and optional
 * pre-existing devices. Built-ins follow ../shared/trace-format.md; an inline
 * platform in a trace header has the same shape (documented in docs/platforms.md).
 */
import { U64_MAX, DEVICE_FLAGS, type DeviceFlag } from '../events/index.js';

export type PtFormat = 'vtd-sl' | 'arm-lpae-s2' | 'mock';
export type ResvType = 'msi' | 'sw_msi' | 'reserved' | 'direct';

export interface ResvRegion {
  readonly start: bigint;
  readonly last: bigint;
  readonly type: ResvType;
}

export interface UnitSpec {
  readonly name: string;
  readonly format: PtFormat;
  /** Bitmap of IO page sizes the domain format supports. */
  readonly pageSizes: bigint;
  readonly aperture: { readonly start: bigint; readonly last: bigint };
  /** Reserved regions every device behind this unit reports (MSI windows...). */
  readonly reserved: readonly ResvRegion[];
  readonly iotlbEntries: number;
  /** Capabilities of the unit; devices may subtract some with device flags. */
  readonly caps: { readonly enforceCoherency: boolean; readonly dirtyTracking: boolean };
}

export interface DeviceSpec {
  readonly dev: string;
  readonly iommu: string;
  readonly group: number;
  readonly driver: string | null;
  readonly flags: readonly DeviceFlag[];
}

export interface Platform {
  readonly name: string;
  readonly units: readonly UnitSpec[];
  readonly devices: readonly DeviceSpec[];
  /** The host CPU page size (PAGE_SIZE). */
  readonly pageSize: bigint;
  /** IOMMU_TEST_CMD is available (CONFIG_IOMMUFD_TEST). */
  readonly selftest: boolean;
}

const KiB = 1024n;
const MiB = 1024n * KiB;
const GiB = 1024n * MiB;
const W48 = { start: 0n, last: (1n << 48n) - 1n };

export const BUILTIN_PLATFORMS: Readonly<Record<string, Platform>> = {
  'x86-vtd': {
    name: 'x86-vtd', pageSize: 4n * KiB, selftest: false, devices: [],
    units: [{
      name: 'dmar0', format: 'vtd-sl', pageSizes: 4n * KiB | 2n * MiB | GiB, aperture: W48,
      reserved: [{ start: 0xfee00000n, last: 0xfeefffffn, type: 'msi' }], iotlbEntries: 1024,
      caps: { enforceCoherency: true, dirtyTracking: true },
    }],
  },
  'arm-smmuv3': {
    name: 'arm-smmuv3', pageSize: 4n * KiB, selftest: false, devices: [],
    units: [{
      name: 'smmu0', format: 'arm-lpae-s2', pageSizes: 4n * KiB | 2n * MiB | GiB, aperture: W48,
      reserved: [{ start: 0x8000000n, last: 0x80fffffn, type: 'sw_msi' }], iotlbEntries: 256,
      caps: { enforceCoherency: true, dirtyTracking: true },
    }],
  },
  'selftest-mock': {
    name: 'selftest-mock', pageSize: 4n * KiB, selftest: true, devices: [],
    units: [{
      name: 'mock', format: 'mock', pageSizes: 2n * KiB, aperture: { start: 0x1000000n, last: 0x7fffffffn },
      reserved: [], iotlbEntries: 1024, caps: { enforceCoherency: true, dirtyTracking: true },
    }],
  },
};

type R = Record<string, unknown>;
const big = (v: unknown): bigint | null => {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'string' && /^(0x[0-9a-f]+|[0-9]+)$/i.test(v)) return BigInt(v);
  return null;
};

/** Resolves a header's platform (a built-in name or an inline object). Errors name the field. */
export function resolvePlatform(spec: string | Readonly<R>): { ok: true; platform: Platform } | { ok: false; field: string; message: string } {
  if (typeof spec === 'string') {
    const p = BUILTIN_PLATFORMS[spec];
    return p ? { ok: true, platform: p } : { ok: false, field: 'platform', message: `unknown platform "${spec}" (built-ins: ${Object.keys(BUILTIN_PLATFORMS).join(', ')})` };
  }
  const bad = (field: string, message: string) => ({ ok: false as const, field: `platform.${field}`, message });
  for (const k of Object.keys(spec)) if (!['name', 'iommus', 'devices', 'page_size', 'selftest'].includes(k)) return bad(k, `unknown platform field "${k}"`);
  const iommus = spec.iommus;
  if (!Array.isArray(iommus) || iommus.length === 0) return bad('iommus', 'an inline platform needs a non-empty "iommus" array');
  const units: UnitSpec[] = [];
  for (const [i, u] of (iommus as R[]).entries()) {
    const at = `iommus[${i}]`;
    if (typeof u !== 'object' || u === null) return bad(at, 'must be an object');
    for (const k of Object.keys(u))
      if (!['name', 'format', 'page_sizes', 'aperture', 'reserved', 'iotlb_entries', 'caps'].includes(k)) return bad(`${at}.${k}`, `unknown field "${k}"`);
    if (typeof u.name !== 'string') return bad(`${at}.name`, 'must be a string');
    if (!['vtd-sl', 'arm-lpae-s2', 'mock'].includes(u.format as string)) return bad(`${at}.format`, 'must be vtd-sl, arm-lpae-s2 or mock');
    const format = u.format as PtFormat;
    let pageSizes = format === 'mock' ? 2n * KiB : 4n * KiB | 2n * MiB | GiB;
    if (u.page_sizes !== undefined) {
      if (!Array.isArray(u.page_sizes)) return bad(`${at}.page_sizes`, 'must be an array of sizes in bytes');
      pageSizes = 0n;
      for (const s of u.page_sizes) {
        const b = big(s);
        if (b === null || b === 0n || (b & (b - 1n)) !== 0n) return bad(`${at}.page_sizes`, `${JSON.stringify(s)} is not a power of two`);
        pageSizes |= b;
      }
    }
    let aperture = format === 'mock' ? { start: 0x1000000n, last: 0x7fffffffn } : W48;
    if (u.aperture !== undefined) {
      const a = u.aperture as R;
      const s = big(a?.start), l = big(a?.last);
      if (s === null || l === null || s > l || l > U64_MAX) return bad(`${at}.aperture`, 'must be {"start", "last"} with start <= last');
      aperture = { start: s, last: l };
    }
    const reserved: ResvRegion[] = [];
    if (u.reserved !== undefined) {
      if (!Array.isArray(u.reserved)) return bad(`${at}.reserved`, 'must be an array');
      for (const [j, r] of (u.reserved as R[]).entries()) {
        const s = big(r?.start), l = big(r?.last);
        const type = (r?.type ?? 'reserved') as ResvType;
        if (s === null || l === null || s > l) return bad(`${at}.reserved[${j}]`, 'must be {"start", "last", "type"} with start <= last');
        if (!['msi', 'sw_msi', 'reserved', 'direct'].includes(type)) return bad(`${at}.reserved[${j}].type`, 'must be msi, sw_msi, reserved or direct');
        reserved.push({ start: s, last: l, type });
      }
    }
    const caps = (u.caps ?? {}) as R;
    units.push({
      name: u.name, format, pageSizes, aperture, reserved,
      iotlbEntries: typeof u.iotlb_entries === 'number' && u.iotlb_entries > 0 ? u.iotlb_entries : 1024,
      caps: { enforceCoherency: caps.enforce_coherency !== false, dirtyTracking: caps.dirty_tracking !== false },
    });
  }
  const devices: DeviceSpec[] = [];
  if (spec.devices !== undefined) {
    if (!Array.isArray(spec.devices)) return bad('devices', 'must be an array');
    for (const [i, d] of (spec.devices as R[]).entries()) {
      const at = `devices[${i}]`;
      if (typeof d?.dev !== 'string') return bad(`${at}.dev`, 'must be a string');
      const iommu = d.iommu ?? units[0]!.name;
      if (!units.some((u) => u.name === iommu)) return bad(`${at}.iommu`, `no IOMMU named ${JSON.stringify(iommu)}`);
      if (typeof d.group !== 'number' || !Number.isInteger(d.group) || d.group < 0) return bad(`${at}.group`, 'must be a group number');
      const flags = (d.flags ?? []) as unknown[];
      if (!Array.isArray(flags) || flags.some((f) => !(DEVICE_FLAGS as readonly unknown[]).includes(f))) return bad(`${at}.flags`, `flags must be among ${DEVICE_FLAGS.join(', ')}`);
      devices.push({ dev: d.dev, iommu: iommu as string, group: d.group, driver: typeof d.driver === 'string' ? d.driver : null, flags: flags as DeviceFlag[] });
    }
  }
  const ps = spec.page_size === undefined ? 4n * KiB : big(spec.page_size);
  if (ps === null) return bad('page_size', 'must be a size in bytes');
  return { ok: true, platform: { name: typeof spec.name === 'string' ? spec.name : 'inline', units, devices, pageSize: ps, selftest: spec.selftest === true } };
}
