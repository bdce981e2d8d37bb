import type { ByteSource } from "../io/byte-source.js";
import type { PickleLimits } from "./pickle/types.js";
import type { PyValue } from "./pickle/values.js";

export type CheckpointFormat =
  | "torch-zip"
  | "torch-legacy"
  | "safetensors"
  | "safetensors-sharded"
  /** A bare pickle (not written by torch.save): opens as a tree, without tensors. */
  | "pickle";

export interface FormatOptions {
  /** Refuse instances of unknown classes too (no opaque objects). */
  strict?: boolean;
  /** `module.name` of globals that may be called as inert calls (yielding opaque objects). */
  allowGlobals?: readonly string[];
  limits?: Partial<PickleLimits>;
  /**
   * Opens a file named relative to the one being opened (the shards of a sharded safetensors
   * index). The caller (the Node entry point) checks that the name stays inside the folder.
   */
  openRelative?: (name: string) => Promise<ByteSource>;
}

/** What a format reader found: the tree with tensors at its leaves, and what else the file holds. */
export interface OpenedFormat {
  format: CheckpointFormat;
  /** The unpickled object (torch) or a Map from tensor name to Tensor (safetensors). */
  root: PyValue;
  /** `module.Class` of every opaque object in the tree. */
  opaqueClasses: ReadonlySet<string>;
  /** safetensors `__metadata__` (merged over shards). */
  metadata?: Readonly<Record<string, string>>;
  /** Files inside a zip checkpoint other than the pickle and storages, by name relative to its folder. */
  records?: ReadonlyMap<string, ByteSource>;
  /** Format facts worth showing: zip folder, byte order, format version, pickle protocol... */
  details: Readonly<Record<string, string | number | boolean>>;
  /** Sources this format opened itself (shards), closed with the checkpoint. */
  ownedSources: readonly ByteSource[];
}
