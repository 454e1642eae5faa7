/*
 * ioasDestroy.ts: what destroying an IOAS does to its data: every area is unmapped
 * and its pages released. The IOAS has no domains at this point (they hold references).
 */
import type { Draft } from 'immer';
import type { World } from './world.js';
import { unmapAll } from './ioas.js';

export function destroyIoasData(d: Draft<World>, ctxId: number, ioasId: number): void {
  const o = d.ctxs[ctxId]!.objects[ioasId]!;
  if (o.type !== 'ioas' || o.data.hwpts.length) throw new Error('destroying an IOAS that still has domains');
  unmapAll(d, ctxId, ioasId);
}
