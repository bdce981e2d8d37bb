/**
 * A read-only map whose entries are worked out when first asked for: for what opening a file
 * can list but rarely needs (a torch zip's extra records take a pass over every entry of the
 * directory, one per tensor).
 */
export class LazyMap<K, V> implements ReadonlyMap<K, V> {
  #map: ReadonlyMap<K, V> | undefined;

  constructor(private readonly build: () => ReadonlyMap<K, V>) {}

  private get map(): ReadonlyMap<K, V> {
    this.#map ??= this.build();
    return this.#map;
  }

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    return this.map.get(key);
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  forEach(callback: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [key, value] of this.map) callback.call(thisArg, value, key, this);
  }

  entries(): MapIterator<[K, V]> {
    return this.map.entries();
  }

  keys(): MapIterator<K> {
    return this.map.keys();
  }

  values(): MapIterator<V> {
    return this.map.values();
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.map[Symbol.iterator]();
  }
}
