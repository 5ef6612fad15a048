// Fibonacci, the seed paper's workload: `peerless fn invoke fib -p n 30 --result` → {"n":30,"fib":832040}
function fib(n) {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

function main(params) {
  const n = Number(params.n ?? 30);
  if (!Number.isInteger(n) || n < 0 || n > 45) return { error: 'n must be an integer between 0 and 45' };
  return { n, fib: fib(n) };
}
