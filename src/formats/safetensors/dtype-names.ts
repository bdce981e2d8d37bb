/**
 * The dtype names of the reference crate's `Dtype` enum, in declaration order. A header naming
 * anything else fails to deserialize; the reference serializer sorts tensors by this order
 * (descending), so writers that match its bytes need it too.
 */
export const RUST_DTYPE_ORDER = [
  "BOOL",
  "F4",
  "F6_E2M3",
  "F6_E3M2",
  "U8",
  "I8",
  "F8_E5M2",
  "F8_E4M3",
  "F8_E8M0",
  "F8_E4M3FNUZ",
  "F8_E5M2FNUZ",
  "I16",
  "U16",
  "F16",
  "BF16",
  "I32",
  "U32",
  "F32",
  "C64",
  "F64",
  "I64",
  "U64",
] as const;
