/*
 * hwInfo.ts: the driver-specific struct IOMMU_GET_HW_INFO copies out, built from the
 * platform's unit description so it always agrees with what the model simulates:
 * struct iommu_hw_info_vtd (cap_reg/ecap_reg), struct iommu_hw_info_arm_smmuv3
 * (IDR0-5, IIDR, AIDR) and the selftest's struct iommu_test_hw_info. Only the fields
 * the model has a meaning for are set (address width, page sizes, coherency and snoop
 * control, dirty tracking, PASID); the rest are zero. Little-endian, as on x86 and arm64.
 */
import type { DeviceFlag } from '../events/index.js';
import type { UnitSpec } from './platform.js';

const MiB2 = 2n * 1024n * 1024n;
const GiB = 1024n * 1024n * 1024n;

function put32(b: Uint8Array, off: number, v: number): void {
  for (let i = 0; i < 4; i++) b[off + i] = (v >>> (8 * i)) & 0xff;
}
function put64(b: Uint8Array, off: number, v: bigint): void {
  for (let i = 0; i < 8; i++) b[off + i] = Number((v >> BigInt(8 * i)) & 0xffn);
}
const bit = (n: number, on = true) => (on ? 1n << BigInt(n) : 0n);

function widthOf(u: UnitSpec): number {
  let w = 0;
  while (w < 64 && (1n << BigInt(w)) <= u.aperture.last) w++;
  return w;
}

/** VT-d capability and extended capability registers (VT-d spec §11.4.2, §11.4.3). */
function vtd(u: UnitSpec, dirty: boolean, snoop: boolean, pasid: boolean): Uint8Array {
  const b = new Uint8Array(24); // flags, __reserved, cap_reg, ecap_reg
  const cap = 6n /* ND: 64K domain IDs */ | bit(10) /* SAGAW: 4-level */ | (BigInt(widthOf(u) - 1) << 16n) /* MGAW */
    | bit(34, (u.pageSizes & MiB2) !== 0n) /* SLLPS 2 MiB */ | bit(35, (u.pageSizes & GiB) !== 0n) /* SLLPS 1 GiB */;
  const ecap = bit(0) /* C: coherent */ | bit(1) /* QI */ | bit(3) /* IR: interrupt remapping */ | bit(6) /* PT */
    | bit(7, snoop) /* SC: snoop control */ | bit(40, pasid) /* PASID */ | bit(43) /* SMTS */ | bit(45, dirty) /* SLADS */;
  put64(b, 8, cap);
  put64(b, 16, ecap);
  return b;
}

/** SMMUv3 ID registers (Arm IHI 0070, §6.3). */
function smmuv3(u: UnitSpec, dirty: boolean, pasid: boolean): Uint8Array {
  const b = new Uint8Array(40); // flags, __reserved, idr[6], iidr, aidr
  const idr0 = 1 /* S2P */ | 2 /* S1P */ | (2 << 2) /* TTF: AArch64 */ | (1 << 4) /* COHACC */ | ((dirty ? 2 : 0) << 6) /* HTTU */
    | (1 << 12) /* ASID16 */ | (1 << 18) /* VMID16 */ | (1 << 27) /* ST_LEVEL: 2-level */;
  const idr1 = 16 /* SIDSIZE */ | ((pasid ? 20 : 0) << 6) /* SSIDSIZE */;
  const oas = widthOf(u) >= 48 ? 5 : widthOf(u) >= 44 ? 4 : widthOf(u) >= 42 ? 3 : widthOf(u) >= 40 ? 2 : widthOf(u) >= 36 ? 1 : 0;
  const idr5 = oas | (1 << 4) /* GRAN4K */;
  put32(b, 8, idr0);
  put32(b, 12, idr1);
  put32(b, 28, idr5);
  put32(b, 32, 0x43b); // IIDR: Arm Ltd implementer
  put32(b, 36, 2); // AIDR: SMMUv3.2
  return b;
}

/** The info struct the unit's driver reports for a device behind it. */
export function hwInfoStruct(u: UnitSpec, flags: readonly DeviceFlag[], dirty: boolean): Uint8Array {
  const pasid = flags.includes('PASID');
  switch (u.format) {
    case 'vtd-sl':
      return vtd(u, dirty, u.caps.enforceCoherency && !flags.includes('NO_ENFORCE_COHERENCY'), pasid);
    case 'arm-lpae-s2':
      return smmuv3(u, dirty, pasid);
    case 'mock': {
      const b = new Uint8Array(8); // flags, test_reg
      put32(b, 4, 0xdeadbeef); // IOMMU_HW_INFO_SELFTEST_REGVAL
      return b;
    }
  }
}

/** The user buffer after the copy: min(len, struct) bytes of the struct, zero after. */
export function hwInfoBuffer(struct: Uint8Array, len: number): string {
  let s = '0x';
  for (let i = 0; i < len; i++) s += (i < struct.length ? struct[i]! : 0).toString(16).padStart(2, '0');
  return s;
}
