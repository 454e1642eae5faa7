/*
 * pipe/: replay with the parsing on a second core. A worker thread (worker.ts) reads,
 * cuts and parses the trace and packs the items (pack.ts); this thread unpacks them and
 * replays, through the same synchronous loop as an in-process replay (PipedSource is an
 * EntrySource, cli/replay.ts). The replay blocks in Atomics.wait when it has caught up
 * with the worker, and the worker when it is AHEAD batches in front (channel.ts).
 *
 * Invariant: a PipedSource gives what LinesSource gives for the same file (tested in
 * pipe.test.ts), and once closed, or at its end, its worker is stopped and nothing of
 * it keeps the process alive.
 */
import { receiveMessageOnPort, type MessagePort, type Worker } from 'node:worker_threads';
import type { Entry, TraceError } from '../../events/index.js';
import { SourceFailure, type EntrySource } from '../replay.js';
import { ALIVE, POSTED, STALL_MS, STOP, TAKEN, type Crash } from './channel.js';
import { TAG, Unpacker, type Batch } from './pack.js';
import { workerFor } from './start.js';

export class PipedSource implements EntrySource {
  lineNo = 0;
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly counters: Int32Array;
  private readonly unpacker = new Unpacker();
  /** Set once the last item was given (or the source closed): next() gives null from then on. */
  private over = false;
  /** How often, and how long in all (ms), the replay waited for the worker (the bench reports it). */
  readonly waited = { times: 0, ms: 0 };

  /** @param stallMs how long a worker may show no sign of life (tests shorten it). */
  constructor(path: string, private readonly stallMs: number = STALL_MS) {
    // Started by main.ts before the CLI loaded, or now (start.ts).
    ({ worker: this.worker, port: this.port, counters: this.counters } = workerFor(path));
  }

  next(): string | Entry | TraceError | SourceFailure | null {
    if (this.over) return null;
    const u = this.unpacker;
    while (u.done) {
      const crash = this.receive();
      if (crash !== null) {
        this.close();
        return new SourceFailure('internal', `the parsing worker failed: ${crash}`);
      }
    }
    switch (u.tag()) {
      case TAG.entry: {
        const e = u.entry();
        this.lineNo = e.line;
        return e;
      }
      case TAG.header: {
        const h = u.header();
        this.lineNo = h.line;
        return h.text;
      }
      case TAG.traceError: {
        const e = u.traceError();
        this.lineNo = e.line;
        this.close();
        return e;
      }
      case TAG.failure: {
        const f = u.failure();
        this.lineNo = f.lineNo;
        this.close();
        return new SourceFailure(f.kind, f.message);
      }
      default:
        this.lineNo = u.end();
        this.close();
        return null;
    }
  }

  /** Waits for the next batch and loads it; or returns the worker's crash message. */
  private receive(): string | null {
    let alive = Atomics.load(this.counters, ALIVE);
    let still = 0; // ms waited since the heartbeat last moved
    for (;;) {
      const posted = Atomics.load(this.counters, POSTED);
      const m = receiveMessageOnPort(this.port);
      if (m !== undefined) {
        const msg = m.message as Batch | Crash;
        if ('crash' in msg) return msg.crash;
        this.unpacker.load(msg);
        Atomics.add(this.counters, TAKEN, 1);
        Atomics.notify(this.counters, TAKEN);
        return null;
      }
      // Nothing yet: sleep until the worker posts (it counts after posting, so no post is missed).
      const t = performance.now();
      const r = Atomics.wait(this.counters, POSTED, posted, Math.min(1000, this.stallMs));
      const ms = performance.now() - t;
      this.waited.times++;
      this.waited.ms += ms;
      if (r !== 'timed-out') continue;
      const now = Atomics.load(this.counters, ALIVE);
      if (now !== alive) {
        alive = now;
        still = 0;
      } else if ((still += ms) >= this.stallMs) return `no sign of life for ${Math.round(still)} ms (killed, or stuck reading)`;
    }
  }

  close(): void {
    if (this.over) return;
    this.over = true;
    Atomics.store(this.counters, STOP, 1);
    Atomics.notify(this.counters, TAKEN);
    this.port.close();
    void this.worker.terminate();
  }
}
