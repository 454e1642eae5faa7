/*
 * start.ts: which files are worth a parsing worker, and starting one (worker.ts) with
 * its channel. It imports nothing of the rest of the CLI, so that main.ts can start the
 * worker of a replay before the CLI's modules load: its boot (~35 ms to the first
 * batch) then overlaps their loading (~90 ms) instead of following it.
 *
 * Invariant: a worker started early serves only a PipedSource of that same path, and
 * at most one; one that nobody takes never keeps the process alive (it is unref'd, and
 * nothing listens on its port) and changes no output.
 */
import * as fs from 'node:fs';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { COUNTERS, type WorkerData } from './channel.js';

/**
 * Files from this size on are replayed with a parsing worker. Below it the worker's
 * start (~35 ms before the first batch) and the second core's contention with V8's GC
 * threads cost more than the parsing it takes off the replaying thread (measured on a
 * 2-core machine: even at ~100k vm-churn entries, 16 MB; docs/decisions.md).
 */
export const PIPE_MIN_BYTES = 16 << 20;

/** Is `path` replayed through a worker? IOMMUFD_SIM_PIPE=0 never, =1 for every file; else files of PIPE_MIN_BYTES and more. */
export function worthPiping(path: string, env: Readonly<Record<string, string | undefined>>): boolean {
  const mode = env.IOMMUFD_SIM_PIPE;
  if (path === '-' || mode === '0') return false;
  if (mode === '1') return true;
  const st = fs.statSync(path, { throwIfNoEntry: false });
  return st !== undefined && st.isFile() && st.size >= PIPE_MIN_BYTES;
}

/** A running worker and the replaying thread's ends of its channel. */
export interface Started {
  readonly path: string;
  readonly worker: Worker;
  readonly port: MessagePort;
  readonly counters: Int32Array;
}

function start(path: string): Started {
  const { port1, port2 } = new MessageChannel();
  const counters = new Int32Array(new SharedArrayBuffer(COUNTERS * 4));
  const data: WorkerData = { path, port: port2, counters };
  const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: data, transferList: [port2] });
  // The replay decides when the worker ends (PipedSource.close()); it never holds the process.
  worker.unref();
  return { path, worker, port: port1, counters };
}

let early: Started | null = null;

/**
 * For a command line `replay [FLAGS] FILE...` (replay's flags take no values), starts
 * the worker of the first argument that is not a flag (nor `-`, stdin) now if it will
 * be piped; a later `--` is not looked for. A wrong guess only costs the
 * second core a few batches of parsing.
 */
export function startEarly(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): void {
  if (argv[0] !== 'replay') return;
  const path = argv.slice(1).find((a) => !a.startsWith('-'));
  try {
    if (path !== undefined && worthPiping(path, env)) early = start(path);
  } catch {
    // Not started: the replay starts its own worker, or reports the file.
  }
}

/** The worker for `path`: the one started early for it if it is still untaken, else a new one. */
export function workerFor(path: string): Started {
  const s = early;
  if (s === null || s.path !== path) return start(path);
  early = null;
  return s;
}
