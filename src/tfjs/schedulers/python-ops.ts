/** Python's integer and sequence operations where JavaScript's differ. */

/** `bisect.bisect_right(items, x)`: the same binary search, so unsorted lists behave as in Python. */
export function bisectRight(items: readonly number[], x: number): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (x < items[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** `a // b` for whole numbers with b > 0 (exact: `Math.floor(a / b)` can round the quotient up). */
export function floorDivide(a: number, b: number): number {
  const remainder = ((a % b) + b) % b;
  return (a - remainder) / b;
}
