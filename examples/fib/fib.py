# Fibonacci, the seed paper's workload: `peerless fn invoke fib-py -p n 30 --result` → {"n": 30, "fib": 832040}
def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def main(params):
    try:
        n = int(params.get("n", 30))
    except (TypeError, ValueError):
        return {"error": "n must be an integer"}
    if n < 0 or n > 10000:
        return {"error": "n must be between 0 and 10000"}
    return {"n": n, "fib": fib(n)}
