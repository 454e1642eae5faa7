/*
 * lines.ts: a file as lines, read in chunks (never the whole file at once). Shared by
 * the in-process reader (io.ts) and the parsing worker (pipe/), so both cut a trace
 * into exactly the same lines and word read errors the same way.
 */
import * as fs from 'node:fs';
import { isAscii } from 'node:buffer';
import { StringDecoder } from 'node:string_decoder';

const CHUNK = 1 << 20;

/** The chunks of a file ("-": stdin); file-system errors become readable messages. */
export function* fileChunks(path: string): Generator<Buffer> {
  let fd: number;
  try {
    fd = path === '-' ? 0 : fs.openSync(path, 'r');
  } catch (e) {
    throw describeFsError(path, e);
  }
  const buf = Buffer.allocUnsafe(CHUNK);
  try {
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(fd, buf, 0, CHUNK, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
        if ((e as NodeJS.ErrnoException).code === 'EOF') break;
        throw describeFsError(path, e);
      }
      if (n === 0) break;
      yield buf.subarray(0, n);
    }
  } finally {
    if (fd !== 0) fs.closeSync(fd);
  }
}

/**
 * Cuts a stream of UTF-8 chunks into lines ("\n" or "\r\n"; a last line without newline
 * counts; no empty line after a final newline). While every chunk so far was ASCII it
 * decodes with latin1 (4x cheaper than UTF-8, and the same text for ASCII); from the
 * first other byte on, with a StringDecoder, which carries characters split across chunks.
 */
export class LineSplitter {
  private dec: StringDecoder | null = null;
  private rest = '';

  /** The lines completed by this chunk. */
  push(c: Buffer): string[] {
    let text: string;
    if (this.dec === null && isAscii(c)) text = this.rest + c.toString('latin1');
    else text = this.rest + (this.dec ??= new StringDecoder('utf8')).write(c);
    const lines = text.split('\n');
    this.rest = lines.pop()!;
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i]!;
      if (l.charCodeAt(l.length - 1) === 13) lines[i] = l.slice(0, -1);
    }
    return lines;
  }

  /** The last line, when the text does not end with a newline. */
  end(): string[] {
    const rest = this.rest + (this.dec?.end() ?? '');
    this.rest = '';
    return rest === '' ? [] : [rest.endsWith('\r') ? rest.slice(0, -1) : rest];
  }
}

export function describeFsError(path: string, e: unknown): Error {
  const err = e as NodeJS.ErrnoException;
  const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'is a directory' : err.code === 'EACCES' ? 'permission denied' : err.message;
  return new Error(`cannot read ${path}: ${why}`);
}
