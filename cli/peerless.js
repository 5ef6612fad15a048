#!/usr/bin/env node
// Entry point of the `peerless` executable. The sources are TypeScript that
// Node 24 runs directly (type stripping), so there is no build step.
const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(`error: peerless needs Node.js 24 or newer; this is ${process.version}\n`);
  process.exit(1);
}
const { main } = await import('./main.ts');
const code = await main(process.argv.slice(2));
if (code !== undefined && code !== null) process.exitCode = code;
