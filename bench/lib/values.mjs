/**
 * The deterministic values every generated tensor holds, and a cheap check that a destination
 * really received them. Values are k/64 for whole k in [-127, 127]: exact in float32 and in
 * bfloat16 (at most 8 significant bits), so a bf16 file read back as float32 must match exactly.
 */

export function valueAt(tensorIndex, element) {
  return (((tensorIndex * 7919 + element * 31) % 255) - 127) / 64;
}

export function fillValues(tensorIndex, array) {
  for (let j = 0; j < array.length; j++) array[j] = valueAt(tensorIndex, j);
  return array;
}

/** Elements checked per tensor: first, second, middle and last. */
function probes(length) {
  return [...new Set([0, Math.min(1, length - 1), length >> 1, length - 1])];
}

/** Sets the probed elements to NaN, so that a contender that skips a tensor is caught. */
export function poison(destinations) {
  for (const array of destinations) for (const j of probes(array.length)) array[j] = Number.NaN;
}

/** Throws unless every probed element holds its expected value (`indexOf` maps array → tensor index). */
export function verify(destinations, label, indexOf = (i) => i) {
  destinations.forEach((array, i) => {
    for (const j of probes(array.length)) {
      const expected = valueAt(indexOf(i), j);
      if (array[j] !== expected) {
        throw new Error(
          `${label}: tensor ${indexOf(i)} element ${j} is ${array[j]}, expected ${expected}`,
        );
      }
    }
  });
}

const f32 = new Float32Array(1);
const f32Bits = new Uint32Array(f32.buffer);

/** The bfloat16 bits of an expected value (exact: the values have at most 8 significant bits). */
function bf16BitsAt(tensorIndex, element) {
  f32[0] = valueAt(tensorIndex, element);
  return f32Bits[0] >>> 16;
}

/** As poison(), for destinations holding raw bfloat16 bits (Uint16Array views). 0xffff is a NaN. */
export function poisonRaw16(destinations) {
  for (const array of destinations) for (const j of probes(array.length)) array[j] = 0xffff;
}

/** As verify(), for destinations holding raw bfloat16 bits. */
export function verifyRaw16(destinations, label) {
  destinations.forEach((array, i) => {
    for (const j of probes(array.length)) {
      const expected = bf16BitsAt(i, j);
      if (array[j] !== expected) {
        throw new Error(
          `${label}: tensor ${i} element ${j} has bits 0x${array[j].toString(16)}, expected 0x${expected.toString(16)}`,
        );
      }
    }
  });
}
