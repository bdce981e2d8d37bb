import { WriteError } from "../errors.js";

/**
 * Sequential output: a file being written atomically, a buffer in memory, an upload. Writers
 * stream into a sink and never seek, so the same code serves every destination.
 */
export interface ByteSink {
  /**
   * Appends `bytes`. Resolves once the sink no longer needs them: the caller may then reuse or
   * overwrite the array (writers pass a reused chunk buffer). Callers await each write in turn.
   */
  write(bytes: Uint8Array): Promise<void>;
  /** Commits everything written. Writes after close fail. */
  close(): Promise<void>;
  /** Discards everything written (for a file: the destination keeps its previous content). Safe to call twice, or after a failure. */
  abort(): Promise<void>;
}

/** A sink that keeps what is written in memory; `bytes()` returns it once closed. */
export interface MemorySink extends ByteSink {
  /** Everything written, as one array (after close). */
  bytes(): Uint8Array;
}

export function createMemorySink(): MemorySink {
  const parts: Uint8Array[] = [];
  let length = 0;
  let state: "open" | "closed" | "aborted" = "open";
  return {
    async write(bytes) {
      if (state !== "open")
        throw new WriteError("SINK_CLOSED", `write to a memory sink after ${state}`);
      // Copied, because the caller may reuse its buffer as soon as this resolves.
      parts.push(bytes.slice());
      length += bytes.byteLength;
    },
    async close() {
      if (state === "aborted")
        throw new WriteError("SINK_CLOSED", "close of an aborted memory sink");
      state = "closed";
    },
    async abort() {
      if (state === "closed") return;
      state = "aborted";
      parts.length = 0;
      length = 0;
    },
    bytes() {
      if (state !== "closed")
        throw new WriteError("SINK_OPEN", `memory sink read while ${state}`, {
          hint: "Call bytes() after close().",
        });
      const out = new Uint8Array(length);
      let at = 0;
      for (const part of parts) {
        out.set(part, at);
        at += part.byteLength;
      }
      return out;
    },
  };
}
