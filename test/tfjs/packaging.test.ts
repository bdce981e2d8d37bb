import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));

function sourceFiles(folder: string): string[] {
  const files: string[] = [];
  const stack = [folder];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) stack.push(path);
      else if (name.endsWith(".ts")) files.push(path);
    }
  }
  return files;
}

describe("packaging of loadout/tfjs", () => {
  it("keeps TensorFlow.js out of everything but src/tfjs", () => {
    const offenders = sourceFiles(join(root, "src"))
      .map((path) => relative(root, path).replaceAll("\\", "/"))
      .filter((path) => !path.startsWith("src/tfjs/"))
      .filter((path) => /["']@tensorflow\//.test(readFileSync(join(root, path), "utf8")));
    expect(offenders).toEqual([]);
  });

  it("imports tfjs only through @tensorflow/tfjs, the declared peer", () => {
    const packages = new Set<string>();
    for (const path of sourceFiles(join(root, "src/tfjs"))) {
      for (const match of readFileSync(path, "utf8").matchAll(/from "(@tensorflow\/[^"]+)"/g)) {
        packages.add(match[1]!);
      }
    }
    expect([...packages]).toEqual(["@tensorflow/tfjs"]);
  });

  it("declares the entry point and tfjs as an optional peer dependency", () => {
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    expect(pkg.exports["./tfjs"]).toEqual({
      types: "./dist/tfjs/index.d.ts",
      default: "./dist/tfjs/index.js",
    });
    // tfjs 4.x: the dev dependency tests the lowest version the peer range allows.
    expect(pkg.peerDependencies["@tensorflow/tfjs"]).toBe(
      `^${pkg.devDependencies["@tensorflow/tfjs"]}`,
    );
    expect(pkg.peerDependenciesMeta["@tensorflow/tfjs"]).toEqual({ optional: true });
    expect(pkg.dependencies["@tensorflow/tfjs"]).toBeUndefined();
  });

  it("never uses node: modules in code that runs in browsers", () => {
    const offenders = sourceFiles(join(root, "src/tfjs"))
      .filter((path) => !path.endsWith("save-node.ts"))
      .filter((path) => /from "node:/.test(readFileSync(path, "utf8")));
    expect(offenders).toEqual([]);
    const index = readFileSync(join(root, "src/tfjs/index.ts"), "utf8");
    expect(index).not.toMatch(/from "\.\/save-node/);
  });
});
