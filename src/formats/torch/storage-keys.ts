import { decimalIndex } from "../decimal-index.js";

/**
 * A map keyed by torch storage keys. torch names its storages "0", "1", "2"... (str of a small
 * integer), so those keys live in an array indexed by their value and any other key in a Map.
 * Opening a checkpoint asks, for every tensor, whether another tensor already shares its
 * storage; with tens of thousands of storages, hashing each key was a measurable part of opening.
 */
export class StorageKeyMap<T> {
  /**
   * One slot per possible index, made at once: grown a slot at a time, it was copied at every
   * doubling (half a megabyte of garbage for 20,000 storages). Filled with `undefined` (an
   * absent key reads the same) so that it has the kind of elements it keeps from the start: an
   * array that changes kind on its first value had the code optimized for the changed kind
   * thrown away at the next checkpoint.
   */
  private readonly byIndex: (T | undefined)[];
  private readonly byKey = new Map<string, T>();

  /** Keys whose value is `indexLimit` or more go to the Map, so the array stays that short. */
  constructor(private readonly indexLimit: number) {
    this.byIndex = new Array<T | undefined>(Math.max(indexLimit, 1)).fill(undefined);
  }

  /** A key is text, or a non-negative integer standing for the key String(key). */
  get(key: string | number): T | undefined {
    const index = this.indexOf(key);
    return index >= 0 ? this.byIndex[index] : this.byKey.get(String(key));
  }

  set(key: string | number, value: T): void {
    const index = this.indexOf(key);
    if (index >= 0) this.byIndex[index] = value;
    else this.byKey.set(String(key), value);
  }

  private indexOf(key: string | number): number {
    if (typeof key === "number") return key < this.indexLimit ? key : -1;
    return decimalIndex(key, this.indexLimit);
  }
}

/**
 * One map kept for the life of the module, so that its hidden class (and the optimized code of
 * get and set) outlives a full garbage collection: see SHAPE_KEEPERS in formats/pickle/values.ts.
 */
export const STORAGE_KEY_MAP_SHAPE_KEEPER = new StorageKeyMap<unknown>(0);
