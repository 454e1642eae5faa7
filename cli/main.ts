#!/usr/bin/env node
/*
 * main.ts: the executable (package.json "bin"). Everything happens in run.ts; this
 * file only binds it to the real process.
 */
import { nodeIo } from './io.js';
import { run } from './run.js';

process.exitCode = run(process.argv.slice(2), nodeIo());
