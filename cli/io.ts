/*
 * io.ts: everything the CLI touches outside itself, behind one small interface, so
 * commands run in-process in tests (memoryIo) and against the real process in
 * main.ts (nodeIo). Output is buffered and written synchronously: the replay hot
 * loop never awaits anything.
 */
import * as fs from 'node:fs';
import { describeFsError, fileChunks, LineSplitter } from './lines.js';
import { PipedSource } from './pipe/index.js';
import { worthPiping } from './pipe/start.js';
import type { EntrySource } from './replay.js';

export interface Out {
  write(s: string): void;
  /** Pushes buffered text out (called at the end of a command and before exit). */
  flush(): void;
}

export interface Io {
  readonly stdout: Out;
  readonly stderr: Out;
  /** The whole text of a file ("-" is standard input). Throws with a readable message. */
  readFile(path: string): string;
  /** The lines of a file without their terminators, read in chunks (never the whole file at once). */
  readLines(path: string): Iterable<string>;
  /** Number of trace entries (non-blank, non-comment lines after the header), or null when unknown (stdin). */
  countEntries(path: string): number | null;
  /** Size in bytes, or null when unknown (stdin). */
  fileSize(path: string): number | null;
  /**
   * The entries of a file read and parsed on a second thread (cli/pipe/), or null when
   * the file is better read in this one: stdin, or smaller than PIPE_MIN_BYTES (pipe/start.ts).
   * IOMMUFD_SIM_PIPE=0 in the environment never pipes, =1 always (for files).
   */
  entrySource?(path: string): EntrySource | null;
  readonly isTTY: { readonly stdout: boolean; readonly stderr: boolean };
  /** Milliseconds, monotonic. */
  now(): number;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** Splits text into lines the way readLines does ("\n" or "\r\n"; no empty last line after a final newline). */
export function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.endsWith('\r')) lines[i] = l.slice(0, -1);
  }
  return lines;
}

/** Counts entries in text: lines whose first non-blank character exists and is not '#', minus the header. */
export function countEntriesIn(text: string): number {
  let n = 0;
  for (const l of splitLines(text)) {
    const t = l.trimStart();
    if (t !== '' && !t.startsWith('#')) n++;
  }
  return Math.max(0, n - 1);
}

class BufferedOut implements Out {
  private parts: string[] = [];
  private size = 0;
  constructor(private readonly fd: number, private readonly limit = 1 << 16) {}
  write(s: string): void {
    this.parts.push(s);
    this.size += s.length;
    if (this.size >= this.limit) this.flush();
  }
  flush(): void {
    if (this.parts.length === 0) return;
    const text = this.parts.join('');
    this.parts = [];
    this.size = 0;
    writeAll(this.fd, text);
  }
}

function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') continue; // a non-blocking pipe is full: retry
      if (code === 'EPIPE') process.exit(0); // the reader went away (`| head`): stop quietly
      throw e;
    }
  }
}

function* fileLines(path: string): Generator<string> {
  const split = new LineSplitter();
  for (const c of fileChunks(path)) {
    const lines = split.push(c);
    for (let i = 0; i < lines.length; i++) yield lines[i]!;
  }
  yield* split.end();
}

/** Counts entry lines by scanning bytes (cheap enough for a progress bar's total). */
function countFileEntries(path: string): number {
  let n = 0;
  let state = 0; // 0: at line start / only blanks so far; 1: inside a counted line; 2: inside a comment line
  for (const c of fileChunks(path)) {
    for (let i = 0; i < c.length; i++) {
      const b = c[i]!;
      if (b === 10) state = 0;
      else if (state === 0 && b !== 32 && b !== 9 && b !== 13) {
        if (b === 35) state = 2;
        else {
          state = 1;
          n++;
        }
      }
    }
  }
  return Math.max(0, n - 1);
}

export function nodeIo(): Io {
  return {
    stdout: new BufferedOut(1),
    stderr: new BufferedOut(2, 0),
    readFile(path) {
      try {
        return fs.readFileSync(path === '-' ? 0 : path, 'utf8');
      } catch (e) {
        throw describeFsError(path, e);
      }
    },
    readLines: (path) => fileLines(path),
    countEntries(path) {
      if (path === '-') return null;
      try {
        return countFileEntries(path);
      } catch {
        return null;
      }
    },
    fileSize(path) {
      if (path === '-') return null;
      try {
        return fs.statSync(path).size;
      } catch {
        return null;
      }
    },
    entrySource: (path) => (worthPiping(path, process.env) ? new PipedSource(path) : null),
    isTTY: { stdout: process.stdout.isTTY === true, stderr: process.stderr.isTTY === true },
    now: () => performance.now(),
    env: process.env,
  };
}

/** An Out that collects text (for tests and the bench). */
export class StringOut implements Out {
  text = '';
  write(s: string): void {
    this.text += s;
  }
  flush(): void {}
}


export interface MemoryIo extends Io {
  readonly stdout: StringOut;
  readonly stderr: StringOut;
}

/** An in-memory Io: files from a map, output collected; a missing file is an error. */
export function memoryIo(files: Readonly<Record<string, string>> = {}, opts: { tty?: boolean; stderrTTY?: boolean; now?: () => number } = {}): MemoryIo {
  const get = (path: string): string => {
    const t = files[path];
    if (t === undefined) throw new Error(`cannot read ${path}: no such file`);
    return t;
  };
  return {
    stdout: new StringOut(),
    stderr: new StringOut(),
    readFile: get,
    readLines: (path) => splitLines(get(path)),
    countEntries: (path) => (files[path] === undefined ? null : countEntriesIn(files[path])),
    fileSize: (path) => (files[path] === undefined ? null : Buffer.byteLength(files[path])),
    isTTY: { stdout: opts.tty === true, stderr: opts.stderrTTY ?? opts.tty === true },
    now: opts.now ?? (() => 0),
    env: {},
  };
}
