// Determinism: the same trace gives the same states and outcomes, every run.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { stateHash } from './index.js';
import { T, runTrace } from '../test/kit.js';

const MiB = 1024 * 1024;
const trace = [
  T.dev('a', 1), T.dev('b', 1), T.dev('c', 2), T.vfio('a'), T.vfio('b'), T.vfio('c'),
  T.iommufd('$ifd'), T.cdev('a', '$a'), T.cdev('b', '$b'), T.cdev('c', '$c'), T.ioas('$ifd', '$A'),
  T.bind('$a', '$ifd', '$Da'), T.bind('$b', '$ifd', '$Db'), T.bind('$c', '$ifd', '$Dc'),
  T.attach('$a', '$A', '$H'), T.attach('$c', '$A', '$H'),
  { op: 'mmap', length: 8 * MiB, expect: { ok: true, addr: '$buf' } },
  { op: 'IOMMU_IOAS_MAP', fd: '$ifd', ioas_id: '$A', flags: ['READABLE', 'WRITEABLE'], user_va: '$buf', length: 4 * MiB, expect: { ok: true, iova: '$iova' } },
  { op: 'dma', dev: 'a', iova: '$iova', length: 4096, dir: 'write', expect: { ok: true } },
  // b is not attached, but its group-mate is: translation is per group (§6.3)
  { op: 'dma', dev: 'b', iova: '$iova', length: 4096, dir: 'read', expect: { ok: true, owner: 'pid:1' } },
  { op: 'IOMMU_IOAS_UNMAP', fd: '$ifd', ioas_id: '$A', iova: '$iova', length: 4 * MiB, expect: { ok: true } },
  { op: 'dma', dev: 'c', iova: '$iova', length: 4096, dir: 'read', expect: { fault: 'not_present' } },
  { op: 'exit', expect: { ok: true } },
];

test('same trace, same state hash after every entry', () => {
  const hashes = (n: number) => {
    const out: string[] = [];
    for (let k = 1; k <= n; k++) out.push(stateHash(runTrace('x86-vtd', trace.slice(0, k)).world));
    return out;
  };
  const first = hashes(trace.length);
  const second = hashes(trace.length);
  assert.equal(first, second);
  assert.is(new Set(first).size > trace.length / 2, true, 'states actually change');
  assert.equal(runTrace('x86-vtd', trace).divergences, []);
});

test.run();
