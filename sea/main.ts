import { main } from '../cli/main.ts';

// The single executable's entry point, bundled to CommonJS (Node 24's
// single-executable applications run a CommonJS main). What cli/peerless.js
// is to a checkout: no version check, since the Node.js is the one built in.

void main(process.argv.slice(2)).then((code) => {
  if (code !== undefined && code !== null) process.exitCode = code;
});
