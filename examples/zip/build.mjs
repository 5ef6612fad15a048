#!/usr/bin/env node
// Builds the zip actions of this folder: node-action.zip (package.json, main.js and the `ms`
// package in node_modules) and python-action.zip (__main__.py and a virtualenv/ folder).
// Usage: node examples/zip/build.mjs   then   peerless fn create uptime examples/zip/node-action.zip --runtime nodejs
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { zipSync } from 'fflate';

const here = dirname(fileURLToPath(import.meta.url));

/** Every file under dir, as archive path → bytes, under prefix. */
function tree(dir, prefix = '', into = {}) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) tree(p, `${prefix}${name}/`, into);
    else into[`${prefix}${name}`] = readFileSync(p);
  }
  return into;
}

const node = tree(join(here, 'node'));
Object.assign(node, tree(join(here, '../../node_modules/ms'), 'node_modules/ms/'));
writeFileSync(join(here, 'node-action.zip'), zipSync(node));
writeFileSync(join(here, 'python-action.zip'), zipSync(tree(join(here, 'python'))));
for (const f of ['node-action.zip', 'python-action.zip']) console.log(`${relative(process.cwd(), join(here, f))}: ${statSync(join(here, f)).size} bytes`);
