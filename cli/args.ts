// A small argument parser for the CLI's OpenWhisk-style flags: `-p KEY VALUE`
// and `-a KEY VALUE` take two values, which general-purpose parsers do not support.

export class UsageError extends Error {}

export interface Parsed {
  positional: string[];
  flags: Map<string, string | true>;
  /** every -p KEY VALUE, in order */
  params: [string, string][];
  /** every -a KEY VALUE (wsk's annotations), in order */
  annotations: [string, string][];
}

export interface FlagSpec {
  /** flags that take a value */
  values: string[];
  /** flags that take none */
  switches: string[];
  /** one-letter aliases → long name */
  aliases?: Record<string, string>;
}

export function parseArgs(argv: string[], spec: FlagSpec): Parsed {
  const out: Parsed = { positional: [], flags: new Map(), params: [], annotations: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.positional.push(...argv.slice(i + 1));
      break;
    }
    if (a === '-p' || a === '--param' || a === '-a' || a === '--annotation') {
      if (i + 2 >= argv.length) throw new UsageError(`${a} needs a KEY and a VALUE`);
      (a === '-p' || a === '--param' ? out.params : out.annotations).push([argv[i + 1]!, argv[i + 2]!]);
      i += 2;
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      let name = a.replace(/^--?/, '');
      let inline: string | undefined;
      const eq = name.indexOf('=');
      if (eq >= 0) {
        inline = name.slice(eq + 1);
        name = name.slice(0, eq);
      }
      name = spec.aliases?.[name] ?? name;
      if (spec.switches.includes(name)) {
        if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
        out.flags.set(name, true);
      } else if (spec.values.includes(name)) {
        const v = inline ?? argv[++i];
        if (v === undefined) throw new UsageError(`--${name} needs a value`);
        out.flags.set(name, v);
      } else throw new UsageError(`unknown flag ${a}`);
      continue;
    }
    out.positional.push(a);
  }
  return out;
}

/** Like `wsk`, a value that parses as JSON is that JSON; anything else is a string. */
export function paramValue(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}
