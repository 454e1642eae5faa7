/*
 * worker.ts: the parsing half of a piped replay, run as a worker thread. It reads the
 * file, cuts it into lines, parses every entry with the codec and packs the items into
 * batches for the replaying thread (index.ts).
 *
 * Invariant: the items are exactly what LinesSource (cli/replay.ts) gives for the same
 * file, in order, ending with the first trace error or failure, or with the end (and the
 * line count). Anything unexpected, even a module that fails to load, is posted as a
 * Crash: the replaying thread blocks on this worker and must always hear from it.
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import { AHEAD, ALIVE, FIRST_BATCH, MAX_BATCH, POSTED, STOP, TAKEN, type Crash, type WorkerData } from './channel.js';

const { path, port, counters } = workerData as WorkerData;

function say(message: object, transfer: ArrayBuffer[] = []): void {
  (port as MessagePort).postMessage(message, transfer);
  Atomics.add(counters, POSTED, 1);
  Atomics.notify(counters, POSTED);
}

try {
  // Loaded here, not imported above: a module that fails to load becomes a Crash.
  const { parse } = await import('./parse.js');
  parse(path, {
    /** Posts a batch; false when the replay stopped. Waits while AHEAD batches are untaken. */
    post(batch) {
      say(batch, [batch.nums.buffer as ArrayBuffer, batch.bigs.buffer as ArrayBuffer]);
      for (;;) {
        if (Atomics.load(counters, STOP) !== 0) return false;
        const taken = Atomics.load(counters, TAKEN);
        if (Atomics.load(counters, POSTED) - taken < AHEAD) return true;
        Atomics.wait(counters, TAKEN, taken);
      }
    },
    firstBatch: FIRST_BATCH,
    maxBatch: MAX_BATCH,
    progress: () => void Atomics.add(counters, ALIVE, 1),
  });
} catch (e) {
  const crash: Crash = { crash: e instanceof Error ? e.stack ?? e.message : String(e) };
  say(crash);
}
