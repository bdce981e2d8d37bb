import { LoadError } from "../errors.js";
import type { PyValue } from "../formats/pickle/values.js";
import type { CheckpointFormat, OpenedFormat } from "../formats/types.js";
import type { ByteSource } from "../io/byte-source.js";
import { type JsonRecord, readJsonMetadata } from "./metadata.js";
import { findModelStateDict, type StateDict } from "./state-dict.js";
import { readTrainingCounters, type TrainingCounters } from "./training-counters.js";
import { getPath, listTensors, type TensorEntry, type TreePath } from "./tree.js";

/**
 * An open checkpoint: its tree (tensors at the leaves, not yet read), what kind of file it is,
 * and helpers to find the parts a training run needs. Close it to release the file.
 */
export class Checkpoint {
  readonly format: CheckpointFormat;
  readonly root: PyValue;
  readonly opaqueClasses: ReadonlySet<string>;
  /** safetensors `__metadata__`. */
  readonly metadata: Readonly<Record<string, string>> | undefined;
  /** Extra files inside a zip checkpoint, by name relative to its folder. */
  readonly records: ReadonlyMap<string, ByteSource>;
  readonly details: Readonly<Record<string, string | number | boolean>>;
  private tensorList: TensorEntry[] | undefined;

  constructor(
    readonly source: ByteSource,
    private readonly opened: OpenedFormat,
  ) {
    this.format = opened.format;
    this.root = opened.root;
    this.opaqueClasses = opened.opaqueClasses;
    this.metadata = opened.metadata;
    this.records = opened.records ?? new Map();
    this.details = opened.details;
  }

  get name(): string {
    return this.source.name;
  }

  /** Every tensor in the checkpoint (model, optimizer state, callbacks...) with its path. */
  tensors(): readonly TensorEntry[] {
    this.tensorList ??= listTensors(this.root);
    return this.tensorList;
  }

  get(path: TreePath): PyValue | undefined {
    return getPath(this.root, path);
  }

  /** The model's state dict (see findModelStateDict). */
  stateDict(): StateDict | undefined {
    return findModelStateDict(this.root);
  }

  /** The model's state dict, or a LoadError saying where loadout looked. */
  requireStateDict(): StateDict {
    const found = this.stateDict();
    if (found) return found;
    throw new LoadError("NO_STATE_DICT", "no model state dict found in the checkpoint", {
      file: this.name,
      hint: "loadout looks for 'state_dict' (Lightning), 'model_state_dict', 'model', a pickled nn.Module, or a top-level dict of tensors. Run `loadout inspect` to see what the file holds.",
    });
  }

  trainingCounters(): Promise<TrainingCounters> {
    return readTrainingCounters(this.root);
  }

  /** anemoi / ai-models metadata JSON stored in the zip. */
  jsonMetadata(): Promise<JsonRecord[]> {
    return readJsonMetadata(this.records);
  }

  /** Bytes read from disk so far, shards included. */
  get bytesRead(): number {
    return (
      this.source.bytesRead + this.opened.ownedSources.reduce((sum, s) => sum + s.bytesRead, 0)
    );
  }

  async close(): Promise<void> {
    await Promise.all([this.source.close(), ...this.opened.ownedSources.map((s) => s.close())]);
  }
}
