#!/usr/bin/env node
/*
 * main.ts: the executable (package.json "bin"). Everything happens in run.ts; this
 * file only binds it to the real process. The rest of the CLI is imported after a
 * replay's parsing worker is started (pipe/start.ts): the worker boots while it loads.
 */
import { startEarly } from './pipe/start.js';

startEarly(process.argv.slice(2), process.env);

const { setFreeze } = await import('../core/index.js');
const { nodeIo } = await import('./io.js');
const { run } = await import('./run.js');

// Worlds are never written after a step (tests check it with freezing on and off);
// freezing them only costs time here (core/freeze.ts).
setFreeze(false);

process.exitCode = run(process.argv.slice(2), nodeIo());
