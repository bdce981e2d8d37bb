import { decimalIndex } from "../decimal-index.js";

/**
 * A map keyed by torch storage keys. torch names its storages "0", "1", "2"... (str of a small
 * integer), so those keys live in an array indexed by their value and any other key in a Map.
 * Opening a checkpoint asks, for every tensor, whether another tensor already shares its
 * storage; with tens of thousands of storages, hashing each key was a measurable part of opening.
 */
export class StorageKeyMap<T> {
  /**
   * Starts holding `undefined` (an absent key reads the same), so that the array has the kind
   * of elements it will keep from its first write: an empty array changes kind on its first
   * value, and code optimized for the changed kind was thrown away at the next checkpoint.
   */
  private readonly byIndex: (T | undefined)[] = [undefined];
  private readonly byKey = new Map<string, T>();

  /** Keys whose value is `indexLimit` or more go to the Map, so the array stays that short. */
  constructor(private readonly indexLimit: number) {}

  get(key: string): T | undefined {
    const index = decimalIndex(key, this.indexLimit);
    return index >= 0 ? this.byIndex[index] : this.byKey.get(key);
  }

  set(key: string, value: T): void {
    const index = decimalIndex(key, this.indexLimit);
    if (index >= 0) this.byIndex[index] = value;
    else this.byKey.set(key, value);
  }
}

/**
 * One map kept for the life of the module, so that its hidden class (and the optimized code of
 * get and set) outlives a full garbage collection: see SHAPE_KEEPERS in formats/pickle/values.ts.
 */
export const STORAGE_KEY_MAP_SHAPE_KEEPER = new StorageKeyMap<unknown>(0);
