import { describe, expect, it } from 'vitest';
import { paramValue, parseArgs, UsageError } from '../../cli/args.ts';

const spec = { values: ['memory', 'runtime'], switches: ['json', 'result'], aliases: { r: 'result' } };

describe('CLI arguments', () => {
  it('reads positionals, flags with values, switches and repeated -p KEY VALUE', () => {
    const a = parseArgs(['fn', 'create', 'f', 'f.js', '--memory', '256', '--runtime=python', '-p', 'a', '1', '--param', 'b', 'x y', '-r', '--json'], spec);
    expect(a.positional).toEqual(['fn', 'create', 'f', 'f.js']);
    expect(a.flags.get('memory')).toBe('256');
    expect(a.flags.get('runtime')).toBe('python');
    expect(a.flags.get('result')).toBe(true);
    expect(a.params).toEqual([
      ['a', '1'],
      ['b', 'x y'],
    ]);
  });

  it('refuses unknown flags, missing values and values on switches', () => {
    expect(() => parseArgs(['--nope'], spec)).toThrow(UsageError);
    expect(() => parseArgs(['--memory'], spec)).toThrow(/needs a value/);
    expect(() => parseArgs(['-p', 'k'], spec)).toThrow(/KEY and a VALUE/);
    expect(() => parseArgs(['--json=1'], spec)).toThrow(/takes no value/);
  });

  it('parses parameter values as JSON when they are JSON, else keeps the string', () => {
    expect(paramValue('30')).toBe(30);
    expect(paramValue('{"a":[1]}')).toEqual({ a: [1] });
    expect(paramValue('true')).toBe(true);
    expect(paramValue('hello world')).toBe('hello world');
  });
});
