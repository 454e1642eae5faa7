// Page-table formats as the hardware defines them: granule, number of radix levels,
// which levels may hold leaves (blocks / superpages), and the native level numbering
// used in walk results. All three formats use 512-entry (9-bit) table pages, so a
// format is fully described by its granule shift, depth and leaf-capable depths.
// Invariant: iovaBits = granuleShift + 9 * levels, and every depth at or below the
// highest leaf-capable depth can hold leaves (page splitting relies on it).
// Granule and span arithmetic on numbers relies on every span and the granule being a
// power of two below 2^31: for an integer x below 2^53, `x & (span - 1)` is x modulo the
// span (the int32 conversion keeps the low bits), far cheaper than `%` on doubles.
// Also here, for the same hot paths: smallNumber, an exact bigint -> number conversion
// below 2^53 that avoids the Number() runtime call.

// Number(bigint) is a runtime call (~15 ns). Writing the bigint into a BigUint64Array
// and adding its two 32-bit halves gives the same exact number ~2x cheaper (measured
// ~7 vs ~16 ns with the range check); the store wraps modulo 2^64, so callers check
// the range with bigint comparisons first. The scratch holds nothing between calls.
const U64 = new BigUint64Array(1);
const U32 = new Uint32Array(U64.buffer);
const LOW = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1 ? 0 : 1;
const B53 = 1n << 53n;

/** x as an exact number when 0 <= x < 2^53, else -1. */
export function smallNumber(x: bigint): number {
  if (x < 0n || x >= B53) return -1;
  U64[0] = x;
  return U32[LOW]! + U32[1 - LOW]! * 4294967296;
}

export const READ = 1;
export const WRITE = 2;
/** Per-leaf dirty bit (VT-d SL D bit / SMMU S2 DBM-managed state); never part of a mapping request. */
export const DIRTY = 4;
export const RW = READ | WRITE;

export type FormatName = 'vtd-sl' | 'arm-lpae-s2' | 'mock';

export const ENTRY_BITS = 9;
export const ENTRIES = 1 << ENTRY_BITS;

export interface PtFormat {
  readonly name: FormatName;
  /** log2 of the smallest leaf (the granule). */
  readonly granuleShift: number;
  /** Number of table levels; depth 0 is the root table, depth levels-1 holds granule leaves. */
  readonly levels: number;
  /** Bitmap over depths (bit d set = depth d may hold leaves). */
  readonly leafDepths: number;
  /** Natural IOVA width: the table translates [0, 2^iovaBits). */
  readonly iovaBits: number;
  /** Every leaf size the hardware supports, as a bitmap of sizes (Linux pgsize_bitmap). */
  readonly pageSizes: bigint;
  /** Entry span in granules, per depth (precomputed: the walk divides by it). */
  readonly spans: readonly number[];
  /** Native level number of a depth, as the architecture manuals name it. */
  readonly levelOf: (depth: number) => number;
  /** Derived, for allocation-free bigint checks: granule size - 1, and 2^iovaBits. */
  readonly granuleMask: bigint;
  readonly reach: bigint;
  /** The same as numbers (exact: iovaBits <= 48): granule size, and 2^iovaBits. */
  readonly granule: number;
  readonly reachNumber: number;
  /** Hardware/driver-imposed aperture, if the format has one narrower than iovaBits. */
  readonly aperture?: { readonly start: bigint; readonly last: bigint };
}

function make(
  name: FormatName,
  granuleShift: number,
  levels: number,
  leafDepthList: number[],
  levelOf: (depth: number) => number,
  aperture?: { start: bigint; last: bigint },
): PtFormat {
  let leafDepths = 0;
  let pageSizes = 0n;
  for (const d of leafDepthList) {
    leafDepths |= 1 << d;
    pageSizes |= 1n << BigInt(granuleShift + ENTRY_BITS * (levels - 1 - d));
  }
  const f: PtFormat = {
    name,
    granuleShift,
    levels,
    leafDepths,
    iovaBits: granuleShift + ENTRY_BITS * levels,
    pageSizes,
    spans: Object.freeze(Array.from({ length: levels }, (_, d) => 2 ** (ENTRY_BITS * (levels - 1 - d)))),
    levelOf,
    granuleMask: (1n << BigInt(granuleShift)) - 1n,
    reach: 1n << BigInt(granuleShift + ENTRY_BITS * levels),
    granule: 2 ** granuleShift,
    reachNumber: 2 ** (granuleShift + ENTRY_BITS * levels),
    ...(aperture ? { aperture: Object.freeze(aperture) } : {}),
  };
  return Object.freeze(f);
}

/** Intel VT-d second-level: 4-level (48-bit), levels named 4 (root) .. 1 (4 KiB PTEs);
 *  superpages at level 2 (2 MiB) and level 3 (1 GiB). */
export const VTD_SL = make('vtd-sl', 12, 4, [1, 2, 3], (d) => 4 - d);

/** Arm SMMUv3 stage 2, VMSAv8-64 LPAE, 4 KiB granule, 48-bit, levels 0 (root) .. 3;
 *  blocks at level 1 (1 GiB) and level 2 (2 MiB), pages at level 3. */
export const ARM_LPAE_S2 = make('arm-lpae-s2', 12, 4, [1, 2, 3], (d) => d);

/** iommufd selftest mock IOMMU: MOCK_IO_PAGE_SIZE = 2 KiB leaves, MOCK_HUGE_PAGE_SIZE =
 *  512 * 2 KiB = 1 MiB huge leaves. The kernel mock keeps an xarray; here it is a 3-level
 *  radix of 512-entry tables (2 KiB x 512^3 = 38-bit reach), levels named 3 (root) .. 1
 *  (2 KiB leaves), huge leaves at level 2. Aperture 0x1000000..0x7fffffff is reported
 *  but enforced by the caller. */
export const MOCK = make('mock', 11, 3, [1, 2], (d) => 3 - d, {
  start: 0x1000000n,
  last: 0x7fffffffn,
});

export const FORMATS: Readonly<Record<FormatName, PtFormat>> = Object.freeze({
  'vtd-sl': VTD_SL,
  'arm-lpae-s2': ARM_LPAE_S2,
  mock: MOCK,
});

/** Leaf size at a depth, in bytes. */
export function spanBytes(f: PtFormat, depth: number): bigint {
  return 1n << BigInt(f.granuleShift + ENTRY_BITS * (f.levels - 1 - depth));
}

/** Converts an allowed page-size bitmap into a bitmap of leaf-capable depths. Throws when
 *  the bitmap asks for sizes the format lacks or omits the granule (both caller bugs). */
export function depthsForSizes(f: PtFormat, pageSizes: bigint): number {
  if ((pageSizes & ~f.pageSizes) !== 0n) {
    throw new Error(`page sizes 0x${pageSizes.toString(16)} not supported by ${f.name}`);
  }
  if ((pageSizes & (1n << BigInt(f.granuleShift))) === 0n) {
    throw new Error(`page sizes 0x${pageSizes.toString(16)} lack the ${f.name} granule`);
  }
  let depths = 0;
  for (let d = 0; d < f.levels; d++) if ((pageSizes & spanBytes(f, d)) !== 0n) depths |= 1 << d;
  return depths;
}

export function sizesForDepths(f: PtFormat, depths: number): bigint {
  let s = 0n;
  for (let d = 0; d < f.levels; d++) if (depths & (1 << d)) s |= spanBytes(f, d);
  return s;
}
