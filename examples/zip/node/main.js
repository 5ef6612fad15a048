// A zip action: package.json names this file, and the `ms` npm package travels in the
// archive's node_modules (examples/zip/build.mjs puts it there).
const ms = require('ms');

exports.main = (params) => {
  const millis = Number(params.ms ?? 90_061_000);
  return { ms: millis, human: ms(millis, { long: true }), short: ms(millis) };
};
