/*
 * bench/main.ts: `npm run bench [-- --entries N] [--seed S] [--json] [--keep]`.
 *
 * Generates a deterministic trace of a workload (`--workload`, default `basic`;
 * 200,000 entries by default) in memory,
 * writes it to a temp file, then measures on that file, streaming it as the CLI does:
 *   - parse floor: JSON.parse of every line (the least any replay must do);
 *   - codec: parseEntryLine of every entry (JSON + typed fields, no model);
 *   - replay without checking: parse, resolve, step (expects only bind variables);
 *   - replay with checking: the same plus expect matching and the final state hash
 *     (what `replay --check --quiet` does);
 *   - the same replay piped (cli/pipe/): a worker reads and parses, this thread unpacks
 *     and replays; reported with the time this thread waited for the worker, and its
 *     busy time per entry; plus what the pipe's transport costs per entry: packing (the
 *     worker's side) and receiving + unpacking (this thread's side);
 * and memory: RSS and heap sampled every 4,096 entries during the replays (peak of the
 * samples), plus the kernel's peak RSS of the whole process (resourceUsage().maxRSS),
 * so no --expose-gc is needed. Prints a table; with --json the table goes to stderr
 * and stdout gets one JSON line with the numbers.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isSkippable } from '../events/index.js';
import { intFlag, parseArgs, UsageError } from '../cli/args.js';
import { parseEntryLine } from '../events/index.js';
import { generate } from '../cli/gen/index.js';
import { nodeIo } from '../cli/io.js';
import { replayLines, replaySource, type FileReport } from '../cli/replay.js';
import { PipedSource } from '../cli/pipe/index.js';
import { Packer, Unpacker } from '../cli/pipe/pack.js';
import { isTraceError } from '../events/index.js';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { setFreeze } from '../core/index.js';

// Measure what the CLI runs: Worlds unfrozen (core/freeze.ts).
setFreeze(false);

const MB = 1024 * 1024;

interface Peak {
  rss: number;
  heapUsed: number;
}

function sampler(peak: Peak): (n: number) => void {
  return () => {
    const m = process.memoryUsage();
    if (m.rss > peak.rss) peak.rss = m.rss;
    if (m.heapUsed > peak.heapUsed) peak.heapUsed = m.heapUsed;
  };
}

function time<T>(f: () => T): { ms: number; value: T } {
  const t = performance.now();
  const value = f();
  return { ms: performance.now() - t, value };
}

function main(argv: readonly string[]): number {
  let args;
  try {
    args = parseArgs(argv, [
      { name: 'entries', short: 'n', value: 'N', doc: 'entries to generate (default 200000)' },
      { name: 'seed', short: 's', value: 'S', doc: 'generator seed (default 1)' },
      { name: 'json', doc: 'one JSON line with the numbers on stdout (the table goes to stderr)' },
      { name: 'keep', doc: 'keep the generated trace file' },
      { name: 'workload', short: 'w', value: 'W', doc: 'generator workload (default basic; see iommufd-sim gen --help)' },
    ]);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`bench: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const entries = intFlag(args, 'entries', 200_000);
  const seed = intFlag(args, 'seed', 1, 0xffffffff);
  const json = args.flags.json === true;
  const workload = typeof args.flags.workload === 'string' ? args.flags.workload : 'basic';
  const say = (s: string) => (json ? process.stderr : process.stdout).write(s + '\n');
  const io = nodeIo();
  const peak: Peak = { rss: 0, heapUsed: 0 };
  const sample = sampler(peak);
  sample(0);
  const base = { ...peak };

  // 1. Generate in memory, then write the file.
  const lines: string[] = [];
  const gen = time(() => generate(workload, { entries, seed, platform: 'x86-vtd' }, (l) => lines.push(l)));
  const file = path.join(os.tmpdir(), `iommufd-sim-bench-${process.pid}.jsonl`);
  fs.writeFileSync(file, lines.join('\n') + '\n');
  const bytes = fs.statSync(file).size;
  lines.length = 0;

  // 2. Parse floor: JSON.parse of every line.
  const floor = time(() => {
    let n = 0;
    for (const l of io.readLines(file)) {
      if (isSkippable(l)) continue;
      JSON.parse(l);
      n++;
    }
    return n - 1;
  });

  // 3. Codec: parseEntryLine of every entry.
  const codec = time(() => {
    let n = 0;
    let first = true;
    for (const l of io.readLines(file)) {
      if (isSkippable(l)) continue;
      if (first) {
        first = false;
        continue;
      }
      parseEntryLine(l, 0);
      n++;
    }
    return n;
  });

  // 4. Replay without checking, 5. with checking (+ state hash).
  const replay = (match: boolean): { ms: number; value: FileReport } =>
    time(() => replayLines(file, io.readLines(file), { match, hash: match, inPlace: true, onProgress: sample, progressEvery: 4096 }));
  const nocheck = replay(false);
  const check = replay(true);
  const piped = new PipedSource(file);
  const pipe = time(() => replaySource(file, piped, { match: true, hash: true, inPlace: true, onProgress: sample, progressEvery: 4096 }));
  sample(0);
  const transport = transportCost(io.readLines(file));
  const maxRss = process.resourceUsage().maxRSS * 1024;
  if (args.flags.keep !== true) fs.rmSync(file, { force: true });
  else say(`trace kept: ${file}`);

  for (const r of [nocheck.value, check.value, pipe.value])
    if (r.error || r.divergences.length || r.entries !== entries) {
      process.stderr.write(`bench: replay did not run clean: ${JSON.stringify({ entries: r.entries, error: r.error, divergences: r.divergences.length })}\n`);
      return 1;
    }
  if (check.value.stateHash !== gen.value.stateHash || pipe.value.stateHash !== gen.value.stateHash) {
    process.stderr.write(`bench: replay ended in state ${check.value.stateHash}, gen in ${gen.value.stateHash}\n`);
    return 1;
  }

  const rate = (n: number, ms: number) => Math.round((n / ms) * 1000);
  const result = {
    workload,
    entries,
    seed,
    bytes,
    node: process.version,
    genPerSec: rate(entries, gen.ms),
    parseFloorPerSec: rate(floor.value, floor.ms),
    codecPerSec: rate(codec.value, codec.ms),
    replayNoCheckPerSec: rate(entries, nocheck.ms),
    replayCheckPerSec: rate(entries, check.ms),
    replayPipedPerSec: rate(entries, pipe.ms),
    pipe: {
      waitedMs: Math.round(piped.waited.ms),
      busyUsPerEntry: +(((pipe.ms - piped.waited.ms) * 1000) / entries).toFixed(3),
      packUsPerEntry: +transport.packUs.toFixed(3),
      receiveUnpackUsPerEntry: +transport.unpackUs.toFixed(3),
    },
    ms: {
      gen: Math.round(gen.ms), parseFloor: Math.round(floor.ms), codec: Math.round(codec.ms), replayNoCheck: Math.round(nocheck.ms), replayCheck: Math.round(check.ms),
      replayPiped: Math.round(pipe.ms),
    },
    memory: {
      baseRssMB: +(base.rss / MB).toFixed(1),
      peakRssSampledMB: +(peak.rss / MB).toFixed(1),
      peakHeapUsedSampledMB: +(peak.heapUsed / MB).toFixed(1),
      maxRssMB: +(maxRss / MB).toFixed(1),
    },
    stateHash: check.value.stateHash,
    counts: check.value.counts,
  };

  const fmt = (n: number) => n.toLocaleString('en-US');
  const row = (name: string, perSec: number, ms: number) => `  ${name.padEnd(34)} ${fmt(perSec).padStart(12)} /s ${fmt(Math.round(ms)).padStart(8)} ms`;
  say(`iommufd-sim bench: ${workload} workload, ${fmt(entries)} entries, seed ${seed}, ${(bytes / MB).toFixed(1)} MB, node ${process.version}`);
  say(row('generate (model + expect + print)', result.genPerSec, gen.ms));
  say(row('parse floor (JSON.parse per line)', result.parseFloorPerSec, floor.ms));
  say(row('codec (parseEntryLine)', result.codecPerSec, codec.ms));
  say(row('replay, no checking', result.replayNoCheckPerSec, nocheck.ms));
  say(row('replay --check (+ state hash)', result.replayCheckPerSec, check.ms));
  say(row('replay --check, piped', result.replayPipedPerSec, pipe.ms));
  say(`  pipe: this thread busy ${result.pipe.busyUsPerEntry} us/entry, waited ${result.pipe.waitedMs} ms for the worker;` +
    ` transport: pack ${result.pipe.packUsPerEntry} us/entry (worker), receive + unpack ${result.pipe.receiveUnpackUsPerEntry} us/entry`);
  say(`  memory: RSS ${result.memory.baseRssMB} MB at start, peak ${result.memory.peakRssSampledMB} MB sampled during the replays` +
    ` (max RSS ${result.memory.maxRssMB} MB incl. generation); peak heap used ${result.memory.peakHeapUsedSampledMB} MB`);
  if (json) process.stdout.write(JSON.stringify(result) + '\n');
  return 0;
}

/**
 * The pipe's transport per entry, in this thread: packing batches of 4096 parsed entries
 * (the worker's share), then posting each through a MessagePort and receiving and
 * unpacking it (the replaying thread's share). One batch at a time: memory stays flat.
 */
function transportCost(lines: Iterable<string>): { packUs: number; unpackUs: number } {
  const packer = new Packer();
  const unpacker = new Unpacker();
  const { port1, port2 } = new MessageChannel();
  let n = 0;
  let packMs = 0;
  let unpackMs = 0;
  let first = true;
  const flush = () => {
    let t = performance.now();
    const b = packer.take();
    packMs += performance.now() - t;
    port1.postMessage(b, [b.nums.buffer as ArrayBuffer, b.bigs.buffer as ArrayBuffer]);
    t = performance.now();
    unpacker.load(receiveMessageOnPort(port2)!.message as typeof b);
    while (!unpacker.done) {
      unpacker.tag();
      unpacker.entry();
    }
    unpackMs += performance.now() - t;
  };
  for (const l of lines) {
    if (isSkippable(l)) continue;
    if (first) {
      first = false;
      continue;
    }
    const e = parseEntryLine(l, 0);
    if (isTraceError(e)) continue;
    const t = performance.now();
    packer.entry(e);
    packMs += performance.now() - t;
    n++;
    if (packer.count === 4096) flush();
  }
  flush();
  port1.close();
  return { packUs: (packMs * 1000) / n, unpackUs: (unpackMs * 1000) / n };
}

process.exitCode = main(process.argv.slice(2));
