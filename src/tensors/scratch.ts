/**
 * Scratch buffers for chunked reads, reused from one tensor to the next. A new buffer per tensor
 * costs a page fault per 4 KiB page the first time a read fills it (the kernel zeroes and maps
 * each one): converting a 1 GiB checkpoint spent about as long on those faults as on copying the
 * bytes. Free buffers are held through WeakRefs, so a buffer nobody is using can still be
 * collected; while chunked reads follow one another it is found again.
 */

/** Free buffers kept for reuse (two chunked reads at once, as a diff does, each find one). */
const MAX_FREE = 2;

const free: WeakRef<ArrayBuffer>[] = [];

/** A buffer of exactly `bytes` bytes: a free one of that size if any is left, else a new one. */
export function takeScratch(bytes: number): ArrayBuffer {
  for (let i = free.length - 1; i >= 0; i--) {
    const buffer = free[i]!.deref();
    if (buffer === undefined || buffer.byteLength === bytes) free.splice(i, 1);
    if (buffer !== undefined && buffer.byteLength === bytes) return buffer;
  }
  return new ArrayBuffer(bytes);
}

/** Hands a buffer back once nothing reads from it or writes to it any more. */
export function giveBackScratch(buffer: ArrayBuffer): void {
  if (free.length >= MAX_FREE) free.shift();
  free.push(new WeakRef(buffer));
}
