"""Generates expected.json for memo-reads.test.ts: for every pickle in test/fixtures/pickle, the
memo indices its GET opcodes read before the first STOP, found with CPython's own pickletools
(the reference for where each opcode and its argument are). `null` when a text-mode GET reads
one: loadout then keeps every memo entry, so there is no set to compare.

    python3 test/pickle/memo-reads/expected.py

Only disassembles (pickletools.genops): nothing in the files is unpickled or executed.
"""

import json
import pathlib
import pickletools

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "pickle"


def memo_reads(data: bytes):
    reads = set()
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name == "GET":
            return None
        if opcode.name in ("BINGET", "LONG_BINGET"):
            reads.add(arg)
    return sorted(reads)


def main() -> None:
    expected = {}
    for path in sorted(FIXTURES.glob("*.pkl")):
        try:
            expected[path.name] = memo_reads(path.read_bytes())
        except ValueError:
            # pickletools refuses it (e.g. a deliberately malformed file): not compared.
            continue
    out = pathlib.Path(__file__).with_name("expected.json")
    out.write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
