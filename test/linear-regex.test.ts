// The claim id matcher (util/linear-regex.ts): the same answers as JS RegExp,
// anchored whole, on its syntax; a one-line refusal for what it does not run;
// and work that grows linearly with the input where RegExp backtracks.
import t from 'tap';
import { compileLinearRegex } from '../util/linear-regex.js';

const PATTERNS = [
  'pump-[0-9]{4}', 'pump-[0-9]{6}', 'lab-[a-z0-9]+', 'u-[0-9]+', 'unit-\\d{2,3}', '[A-Z]{2}\\d{0,}',
  '([A-Z]+-?)+[0-9]{4}', '(a|ab)(c|bcd)(d*)', '(?:x|y)*z?', 'a.c', '[^a-c]+', '[\\w.-]+', '\\S+\\s?\\S*',
  '(a*)*b', '(|a)+', 'a{2}b{1,}c{0,2}', 'a+?b??', '[]a]?x', '[a\\]]+', '\\.\\*\\+\\?\\(\\)\\[\\]\\{\\}\\|\\\\\\/\\-',
  '^abc$', 'a|^b|c$', '[-a]z', '[a-]z', '[\\d-]', '\\W\\D', '(ab|cd){1,3}', 'x(?:)y', 'a||b', '[^]', '[]',
];
const INPUTS = [
  '', 'a', 'b', 'c', 'z', 'x', 'xy', 'xyz', 'abc', 'abcd', 'ab', 'abbcd', 'acd', 'aaab', 'aab', 'aabbbc', 'aabcc', 'ab-c', '1',
  'pump-0001', 'pump-000001', 'pump-00001', 'lab-x9', 'lab-', 'u-7', 'unit-12', 'unit-1234', 'AB', 'AB12345', 'AB-CD1234', 'ABCD1234',
  'A'.repeat(31) + '.', '--', '-z', 'az', ']x', 'a]]', '.*+?()[]{}|\\/-', 'a c', 'a\nc', ' b', 'abcdcd', 'ababab', 'abababab', '!1', '_', 'xyzz',
];

t.test('answers as JS RegExp does, anchored whole', async (t) => {
  let compared = 0;
  for (const p of PATTERNS) {
    const ours = compileLinearRegex(p);
    const js = new RegExp(`^(?:${p})$`);
    for (const s of INPUTS) {
      if (ours.test(s) !== js.test(s)) t.fail(`${p} on ${JSON.stringify(s)}: ours ${ours.test(s)}, RegExp ${js.test(s)}`);
      compared++;
    }
  }
  t.equal(compared, PATTERNS.length * INPUTS.length, `${compared} pattern/input pairs compared`);
});

t.test('refuses what it does not run, with the reason and where', async (t) => {
  const cases: [string, RegExp][] = [
    ['(a)\\1', /backreferences/], ['a(?=b)', /lookaround/], ['(?<n>a)', /lookaround and named groups/], ['a(?!b)', /lookaround/],
    ['\\bword', /\\b is not supported/], ['\\x41', /\\x is not supported/], ['\\u0041', /\\u is not supported/], ['\\p{L}', /\\p is not supported/],
    ['a{2', /literal \{ must be escaped/], ['a}', /literal \} must be escaped/], ['*a', /nothing to repeat/], ['a**', /nothing to repeat/], ['^*', /nothing to repeat/],
    ['(ab', /unterminated group/], ['ab)', /unmatched \)/], ['[ab', /unterminated character class/], ['[z-a]', /range out of order/], ['[\\d-z]', /range must be between two characters/],
    ['a{3,2}', /numbers out of order/], ['a{256}', /count above 255/], ['(a{200}){200}', /too large/], ['a\\', /\\ at end/],
  ];
  for (const [p, why] of cases) {
    t.throws(() => compileLinearRegex(p), { code: 'ERR_USAGE', message: why }, p);
    t.throws(() => compileLinearRegex(p), { message: /^[^\n]+ at character \d+$|too large/ }, `${p}: one line`);
  }
});

t.test('the work grows linearly with the input, where RegExp backtracks', async (t) => {
  const re = compileLinearRegex('([A-Z]+-?)+[0-9]{4}');
  const steps = (n: number) => {
    const c = { steps: 0 };
    t.equal(re.test('A'.repeat(n) + '.', c), false);
    return c.steps;
  };
  const s32 = steps(31);
  const s64 = steps(63);
  const s128 = steps(127);
  // Each character visits at most every instruction once: (n + 1) × a constant, never 2^n.
  t.ok(s64 <= 2.2 * s32 && s128 <= 2.2 * s64, `steps for 32, 64, 128 characters: ${s32}, ${s64}, ${s128}`);
  t.ok(s128 <= 129 * 20, `at most 20 instructions per character (${s128})`);
  t.equal(re.test('AB-CD-EF1234'), true);
  t.equal(re.test(`${'A'.repeat(120)}1234`), true);
});
