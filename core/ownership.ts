/*
 * ownership.ts: the iommu_group DMA-ownership state machine (drivers/iommu/iommu.c)
 * and the one place where a group changes domain. A group is owned either by kernel
 * DMA-API drivers (owner null, ownerCnt = their number) or by exactly one user
 * cookie (an iommufd ctx); a user-owned group is never in its default domain.
 *
 * setGroupDomain also points every device of the group at the new domain in the
 * simulated hardware's context tables, so what the model believes and what the
 * hardware translates cannot drift apart.
 */
import type { Draft } from 'immer';
import type { Device, Group, GroupDomain, World } from './world.js';
import { hwSetContext } from './hwsync.js';
import { hasBug } from './bugs.js';
import { peek } from './peek.js';

export const DMA_MANAGED_DRIVERS: readonly string[] = ['vfio-pci', 'pci-stub'];
export const isDmaManaged = (driver: string): boolean => DMA_MANAGED_DRIVERS.includes(driver);

export function describeDomain(g: GroupDomain): string {
  switch (g.kind) {
    case 'default':
      return 'its default (DMA-API) domain';
    case 'blocking':
      return 'the blocking domain';
    case 'hwpt':
      return `HWPT ${g.hwpt} of iommufd ctx ${g.ctx}`;
  }
}

/** Points the group, and every device in it, at `domain`. */
export function setGroupDomain(d: Draft<World>, groupId: number, domain: GroupDomain): void {
  const g = d.groups[groupId]!;
  g.domain = domain;
  for (const dev of peek(g).devices) hwSetContext(d, g.unit, dev, contextFor(g as Group, domain));
}

export function contextFor(g: Group, domain: GroupDomain): { kind: 'blocked' } | { kind: 'domain'; domain: number } {
  switch (domain.kind) {
    case 'default':
      return { kind: 'domain', domain: g.defaultDomain };
    case 'blocking':
      return { kind: 'blocked' };
    case 'hwpt':
      return { kind: 'domain', domain: domain.domain };
  }
}

/** iommu_device_use_default_domain, run at probe of a DMA-API driver. */
export function useDefaultDomain(d: Draft<World>, g: Draft<Group>): string | null {
  if (g.ownerCnt > 0 && (g.owner !== null || g.domain.kind !== 'default')) {
    return g.owner
      ? `group ${g.id} is owned for user DMA by iommufd ctx ${g.owner.ctx} (${describeDomain(g.domain)})`
      : `group ${g.id} is not in its default domain`;
  }
  void d;
  g.ownerCnt++;
  return null;
}

export function unuseDefaultDomain(g: Draft<Group>): void {
  if (g.owner === null && g.ownerCnt > 0) g.ownerCnt--;
}

/** A group member that keeps the group from being claimed for user DMA, in words. */
export function kernelUser(w: Draft<World>, g: Draft<Group>): string | null {
  for (const name of g.devices) {
    const dev = w.devices[name]!;
    if (dev.driver && !isDmaManaged(dev.driver)) return `${name} is bound to ${dev.driver}, a DMA-API driver`;
  }
  return null;
}

export type ClaimResult = { ok: true } | { ok: false; errno: 'EPERM' | 'EBUSY' | 'EINVAL'; reason: string };

/** iommu_device_claim_dma_owner(dev, ctx): shared by devices of one group bound to the same ctx. */
export function claimDmaOwner(d: Draft<World>, dev: Draft<Device>, ctx: number): ClaimResult {
  const g = d.groups[dev.group]!;
  if (g.ownerCnt > 0) {
    if (g.owner && g.owner.ctx === ctx) {
      g.ownerCnt++;
      return { ok: true };
    }
    const who = g.owner ? `already owned by iommufd ctx ${g.owner.ctx}` : `in kernel use: ${kernelUser(d, g) ?? 'a DMA-API driver is bound'}`;
    return { ok: false, errno: 'EPERM', reason: `group ${g.id} is not viable: ${who}` };
  }
  if (g.domain.kind !== 'default')
    return { ok: false, errno: 'EBUSY', reason: `group ${g.id} is attached to a non-core domain (${describeDomain(g.domain)})` };
  const devices = peek(peek(d).devices);
  const direct = peek(g).devices.find((n) => devices[n]!.flags.includes('REQUIRE_DIRECT'));
  if (direct)
    return { ok: false, errno: 'EINVAL', reason: `${direct} requires a direct (identity) mapping, so group ${g.id} cannot take the blocking domain` };
  if (hasBug(d, 'claim-one-device')) {
    g.domain = { kind: 'blocking' };
    hwSetContext(d, g.unit, dev.name, { kind: 'blocked' });
  } else setGroupDomain(d, g.id, { kind: 'blocking' });
  g.owner = { kind: 'iommufd', ctx };
  g.ownerCnt = 1;
  return { ok: true };
}

/** iommu_device_release_dma_owner: the last claim restores the default domain (cannot fail). */
export function releaseDmaOwner(d: Draft<World>, groupId: number): void {
  const g = d.groups[groupId]!;
  if (g.ownerCnt > 1) {
    g.ownerCnt--;
    return;
  }
  g.ownerCnt = 0;
  g.owner = null;
  setGroupDomain(d, g.id, { kind: 'default' });
}
