/*
 * parse.ts: the work of the parsing worker (worker.ts), as a plain function: read
 * `path`, cut lines, skip comments and blanks (counted), pass the header's text, parse
 * each entry, pack everything into batches and hand them to `post`.
 *
 * Invariant: the items are those LinesSource (cli/replay.ts) would give, in order; the
 * last is the first trace error, a failure ('io': the file could not be read, after the
 * lines read so far; 'internal': the codec threw), or the end with the line count.
 */
import { isSkippable, isTraceError, parseEntryLine } from '../../events/index.js';
import { fileChunks, LineSplitter } from '../lines.js';
import { Packer, type Batch } from './pack.js';

export interface ParseOptions {
  /** Takes a batch; false: the replay needs nothing more (stop reading). */
  post(batch: Batch): boolean;
  /** Items in the first batch, doubling per batch up to maxBatch (the first one is awaited). */
  readonly firstBatch: number;
  readonly maxBatch: number;
  /** Called for every chunk read (the worker's heartbeat). */
  readonly progress?: () => void;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function parse(path: string, opts: ParseOptions): void {
  const packer = new Packer();
  let batch = opts.firstBatch;
  let lineNo = 0;
  let headerSeen = false;
  let going = true; // false once the last item is packed, or the replay stopped
  let stopped = false;

  /** Packs one line; false after the last item (a trace error or an internal failure) or when the replay stopped. */
  const line = (text: string): boolean => {
    lineNo++;
    if (isSkippable(text)) return true;
    if (!headerSeen) {
      headerSeen = true;
      packer.header(lineNo, text);
      return true;
    }
    let e;
    try {
      e = parseEntryLine(text, lineNo);
    } catch (err) {
      packer.failure(lineNo, 'internal', message(err));
      return false;
    }
    if (isTraceError(e)) {
      packer.traceError(e);
      return false;
    }
    packer.entry(e);
    if (packer.count < batch) return true;
    batch = Math.min(batch * 2, opts.maxBatch);
    stopped = !opts.post(packer.take());
    return !stopped;
  };

  const split = new LineSplitter();
  const chunks = fileChunks(path);
  for (;;) {
    let next: IteratorResult<Buffer>;
    try {
      next = chunks.next();
    } catch (e) {
      packer.failure(lineNo, 'io', message(e));
      going = false;
      break;
    }
    opts.progress?.();
    if (next.done === true) {
      for (const l of split.end()) if (going) going = line(l);
      break;
    }
    for (const l of split.push(next.value)) if (!(going = line(l))) break;
    if (!going) {
      chunks.return(undefined);
      break;
    }
  }
  if (stopped) return;
  if (going) packer.end(lineNo);
  opts.post(packer.take());
}
