/*
 * Result shapes shared by the IOVA helpers. User-caused failures are values
 * carrying the kernel errno and a human reason naming the conflicting range or
 * owner; exceptions are reserved for model bugs (see IntervalMap.insert).
 */

export interface IoptFail<E extends string> {
  readonly ok: false;
  readonly errno: E;
  readonly reason: string;
}
