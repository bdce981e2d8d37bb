/** Command-line options of `node bench/run.js`. */

export const USAGE = `usage: node bench/run.js [options]

  --only a,b     run only these sections (default: all; see the list below)
  --quick        small files and fewer rounds: a smoke test, not a measurement
  --rounds N     interleaved rounds per measurement (default 5; 3 with --quick)
  --no-torch     skip the PyTorch contenders even when a Python with torch is found
  --python PATH  the Python to run bench/torch_bench.py with (default: /tmp/tv/bin/python, then python3)
  --torch-threads N  torch's intra-op threads (default 1, like loadout's one JS thread; 0: torch's default)
  --out FILE     where to write the results (default bench/results.json; results.quick.json
                 with --quick, results.partial.json with --only)
  --markdown FILE  also write the tables as Markdown (for docs/benchmarks.md)
  --help         this text`;

/** Parses `argv` (without node and the script); throws an Error with a readable message on bad input. */
export function parseOptions(argv) {
  const options = {
    only: undefined,
    quick: false,
    rounds: undefined,
    torch: true,
    python: undefined,
    torchThreads: 1,
    out: undefined,
    markdown: undefined,
    help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? arg.split(/=(.*)/s) : [arg];
    const value = () => {
      if (inline !== undefined) return inline;
      const next = argv[++i];
      if (next === undefined) throw new Error(`${flag} needs a value`);
      return next;
    };
    switch (flag) {
      case "--only":
        options.only = value()
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean);
        break;
      case "--quick":
        options.quick = true;
        break;
      case "--rounds": {
        const text = value();
        const rounds = Number(text);
        if (!Number.isInteger(rounds) || rounds < 1 || rounds > 100) {
          throw new Error(`--rounds ${text}: give a whole number from 1 to 100`);
        }
        options.rounds = rounds;
        break;
      }
      case "--no-torch":
        options.torch = false;
        break;
      case "--python":
        options.python = value();
        break;
      case "--torch-threads": {
        const text = value();
        const threads = Number(text);
        if (!Number.isInteger(threads) || threads < 0 || threads > 256) {
          throw new Error(`--torch-threads ${text}: give a whole number from 0 to 256`);
        }
        options.torchThreads = threads;
        break;
      }
      case "--out":
        options.out = value();
        break;
      case "--markdown":
        options.markdown = value();
        break;
      case "--help":
      case "-h":
        options.help = true;
        break;
      default:
        throw new Error(`unknown option ${arg}`);
    }
  }
  options.rounds ??= options.quick ? 3 : 5;
  return options;
}
