#!/usr/bin/env node
/*
 * main.ts: the executable (package.json "bin"). Everything happens in run.ts; this
 * file only binds it to the real process.
 */
import { setFreeze } from '../core/index.js';
import { nodeIo } from './io.js';
import { run } from './run.js';

// Worlds are never written after a step (tests check it with freezing on and off);
// freezing them only costs time here (core/freeze.ts).
setFreeze(false);

process.exitCode = run(process.argv.slice(2), nodeIo());
