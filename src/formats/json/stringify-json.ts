import type { JsonValue } from "./exact-json.js";

/**
 * Compact JSON text of a parsed value (bigints written exactly), without recursion: pending
 * work is a stack of values to write and punctuation to emit between them.
 */
export function stringifyJson(value: JsonValue): string {
  const parts: string[] = [];
  // Strings on the stack are literal text to emit; anything else is a value still to write.
  const stack: ({ text: string } | { value: JsonValue })[] = [{ value }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    if ("text" in item) {
      parts.push(item.text);
      continue;
    }
    const v = item.value;
    if (v instanceof Map) {
      // Pushed in reverse so they pop in document order.
      const entries = [...v];
      stack.push({ text: "}" });
      for (let k = entries.length - 1; k >= 0; k--) {
        const [key, member] = entries[k]!;
        stack.push({ value: member });
        stack.push({ text: `${k > 0 ? "," : ""}${JSON.stringify(key)}:` });
      }
      stack.push({ text: "{" });
    } else if (Array.isArray(v)) {
      stack.push({ text: "]" });
      for (let k = v.length - 1; k >= 0; k--) {
        stack.push({ value: v[k]! });
        if (k > 0) stack.push({ text: "," });
      }
      stack.push({ text: "[" });
    } else if (typeof v === "bigint") {
      parts.push(v.toString());
    } else {
      // null, booleans, finite numbers (-0 as 0) and strings, as JSON.stringify writes them.
      parts.push(JSON.stringify(v));
    }
  }
  return parts.join("");
}
