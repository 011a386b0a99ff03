import { UsageError } from '../errors/index.js';

/**
 * A regular expression that runs in time linear in its input (a Thompson NFA
 * simulated Pike-style: every live state advances together, one character at a
 * time), for patterns whose text comes from one party and whose input from
 * another: a claim's `--id-pattern` against the id a device chooses. JS's
 * backtracking RegExp takes exponential time on `([A-Z]+-?)+[0-9]{4}`; this
 * takes at most (input length + 1) × program size steps.
 *
 * The syntax is a subset of JS's (no flags, UTF-16 code units, as RegExp
 * without `u`), and it always matches the whole input:
 *   literals, `.`, `[...]` `[^...]` with ranges, `\d \D \w \W \s \S`, `\n \r \t \f \v`,
 *   a backslash before any punctuation, `^` `$`, `( )` `(?: )`, `|`,
 *   `* + ? {m} {m,} {m,n}` (counts up to 255; a trailing `?` is allowed and changes nothing).
 * Refused with a one-line UsageError: backreferences, lookaround, named groups,
 * `\b \B`, `\x \u \c \p` escapes, an unescaped `{` or `}` that is not a count.
 */
export interface LinearRegex {
  readonly source: string;
  /** Whether `text` matches whole; `counter.steps` (when given) grows by the states visited. */
  test(text: string, counter?: { steps: number }): boolean;
}

const MAX_COUNT = 255;
/** Instructions once counted repetitions are expanded: bounds the work per input character. */
const MAX_PROGRAM = 4096;

/** Sorted, disjoint, inclusive code-unit ranges [lo0, hi0, lo1, hi1, ...]. */
type CharSet = number[];
type Node =
  | { readonly t: 'set'; readonly set: CharSet }
  | { readonly t: 'cat'; readonly items: Node[] }
  | { readonly t: 'alt'; readonly alts: Node[] }
  | { readonly t: 'rep'; readonly node: Node; readonly min: number; readonly max: number }
  | { readonly t: 'bol' | 'eol' };

type Instr =
  | { op: 'set'; set: CharSet }
  | { op: 'split'; x: number; y: number }
  | { op: 'jmp'; x: number }
  | { op: 'bol' | 'eol' | 'match' };

const DIGIT: CharSet = [48, 57];
const WORD: CharSet = [48, 57, 65, 90, 95, 95, 97, 122];
const SPACE: CharSet = [9, 13, 32, 32, 0xa0, 0xa0, 0x1680, 0x1680, 0x2000, 0x200a, 0x2028, 0x2029, 0x202f, 0x202f, 0x205f, 0x205f, 0x3000, 0x3000, 0xfeff, 0xfeff];
const LINE_TERMINATORS: CharSet = [10, 10, 13, 13, 0x2028, 0x2029];
const CONTROL: Record<string, number> = { n: 10, r: 13, t: 9, f: 12, v: 11 };

/** @throws UsageError naming what is not supported, or what is wrong, and where */
export function compileLinearRegex(source: string): LinearRegex {
  const program = emit(new Parser(source).parse());
  return {
    source,
    test: (text, counter) => run(program, text, counter),
  };
}

function union(sets: CharSet[]): CharSet {
  const pairs: [number, number][] = [];
  for (const s of sets) for (let i = 0; i < s.length; i += 2) pairs.push([s[i]!, s[i + 1]!]);
  pairs.sort((a, b) => a[0] - b[0]);
  const out: CharSet = [];
  for (const [lo, hi] of pairs) {
    if (out.length && lo <= out[out.length - 1]! + 1) out[out.length - 1] = Math.max(out[out.length - 1]!, hi);
    else out.push(lo, hi);
  }
  return out;
}

function complement(set: CharSet): CharSet {
  const out: CharSet = [];
  let next = 0;
  for (let i = 0; i < set.length; i += 2) {
    if (set[i]! > next) out.push(next, set[i]! - 1);
    next = set[i + 1]! + 1;
  }
  if (next <= 0xffff) out.push(next, 0xffff);
  return out;
}

function contains(set: CharSet, c: number): boolean {
  for (let i = 0; i < set.length && set[i]! <= c; i += 2) if (c <= set[i + 1]!) return true;
  return false;
}

class Parser {
  private pos = 0;
  constructor(private readonly src: string) {}

  parse(): Node {
    const node = this.alternation();
    if (this.pos < this.src.length) this.fail('unmatched )');
    return node;
  }

  private fail(why: string): never {
    throw new UsageError(`${why} at character ${this.pos + 1}`);
  }

  private peek(): string | undefined {
    return this.src[this.pos];
  }

  private alternation(): Node {
    const alts = [this.sequence()];
    while (this.peek() === '|') {
      this.pos++;
      alts.push(this.sequence());
    }
    return alts.length === 1 ? alts[0]! : { t: 'alt', alts };
  }

  private sequence(): Node {
    const items: Node[] = [];
    for (let c = this.peek(); c !== undefined && c !== '|' && c !== ')'; c = this.peek()) items.push(this.quantified(this.atom()));
    return items.length === 1 ? items[0]! : { t: 'cat', items };
  }

  private quantified(atom: Node): Node {
    const q = this.quantifier();
    if (!q) return atom;
    if (atom.t === 'bol' || atom.t === 'eol') this.fail('nothing to repeat');
    if (this.peek() === '?') this.pos++; // lazy: the same strings match whole
    if (this.quantifier()) this.fail('nothing to repeat');
    return { t: 'rep', node: atom, ...q };
  }

  private quantifier(): { min: number; max: number } | null {
    const c = this.peek();
    if (c === '*' || c === '+' || c === '?') {
      this.pos++;
      return { min: c === '+' ? 1 : 0, max: c === '?' ? 1 : Infinity };
    }
    if (c !== '{') return null;
    const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.pos));
    if (!m) this.fail('a literal { must be escaped as \\{');
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
    if (min > MAX_COUNT || (max !== Infinity && max > MAX_COUNT)) this.fail(`a count above ${MAX_COUNT}`);
    if (max < min) this.fail('numbers out of order in {} quantifier');
    this.pos += m[0].length;
    return { min, max };
  }

  private atom(): Node {
    const c = this.src[this.pos++]!;
    switch (c) {
      case '(': {
        if (this.peek() === '?') {
          if (this.src[this.pos + 1] !== ':') this.fail('lookaround and named groups are not supported');
          this.pos += 2;
        }
        const inner = this.alternation();
        if (this.peek() !== ')') this.fail('unterminated group');
        this.pos++;
        return inner;
      }
      case '[': return { t: 'set', set: this.charClass() };
      case '.': return { t: 'set', set: complement(LINE_TERMINATORS) };
      case '^': return { t: 'bol' };
      case '$': return { t: 'eol' };
      case '\\': return { t: 'set', set: this.escape(false) };
      case '*': case '+': case '?': this.pos--; return this.fail('nothing to repeat');
      case '{': case '}': this.pos--; return this.fail(`a literal ${c} must be escaped as \\${c}`);
      default: return { t: 'set', set: [c.charCodeAt(0), c.charCodeAt(0)] };
    }
  }

  /** After `[`: the class up to its `]`. */
  private charClass(): CharSet {
    const negated = this.peek() === '^';
    if (negated) this.pos++;
    const parts: CharSet[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined) this.fail('unterminated character class');
      if (c === ']') break;
      const lo = this.classAtom();
      if (this.peek() === '-' && this.src[this.pos + 1] !== undefined && this.src[this.pos + 1] !== ']') {
        this.pos++;
        const hi = this.classAtom();
        if (lo.length !== 2 || hi.length !== 2 || lo[0] !== lo[1] || hi[0] !== hi[1]) this.fail('a range must be between two characters');
        if (lo[0]! > hi[0]!) this.fail('range out of order in character class');
        parts.push([lo[0]!, hi[0]!]);
      } else {
        parts.push(lo);
      }
    }
    this.pos++;
    const set = union(parts);
    return negated ? complement(set) : set;
  }

  private classAtom(): CharSet {
    const c = this.src[this.pos++]!;
    if (c !== '\\') return [c.charCodeAt(0), c.charCodeAt(0)];
    return this.escape(true);
  }

  /** After a backslash. */
  private escape(inClass: boolean): CharSet {
    const c = this.src[this.pos++];
    if (c === undefined) this.fail('\\ at end of pattern');
    switch (c) {
      case 'd': return DIGIT;
      case 'D': return complement(DIGIT);
      case 'w': return WORD;
      case 'W': return complement(WORD);
      case 's': return SPACE;
      case 'S': return complement(SPACE);
    }
    if (c in CONTROL) return [CONTROL[c]!, CONTROL[c]!];
    if (c === 'b' && inClass) return [8, 8];
    if (/[0-9]/.test(c)) { this.pos--; this.fail('backreferences and octal escapes are not supported'); }
    if (/[A-Za-z]/.test(c)) { this.pos--; this.fail(`\\${c} is not supported`); }
    return [c.charCodeAt(0), c.charCodeAt(0)];
  }
}

function emit(root: Node): Instr[] {
  const prog: Instr[] = [];
  const push = (i: Instr): number => {
    if (prog.length >= MAX_PROGRAM) throw new UsageError('the pattern is too large once its counted repetitions are written out: use smaller counts');
    prog.push(i);
    return prog.length - 1;
  };
  const gen = (n: Node): void => {
    switch (n.t) {
      case 'set': push({ op: 'set', set: n.set }); return;
      case 'bol': case 'eol': push({ op: n.t }); return;
      case 'cat': n.items.forEach(gen); return;
      case 'alt': {
        const jumps: { op: 'jmp'; x: number }[] = [];
        n.alts.forEach((alt, i) => {
          const last = i === n.alts.length - 1;
          const split = last ? null : { op: 'split' as const, x: 0, y: 0 };
          if (split) { push(split); split.x = prog.length; }
          gen(alt);
          if (split) {
            const jmp = { op: 'jmp' as const, x: 0 };
            push(jmp);
            jumps.push(jmp);
            split.y = prog.length;
          }
        });
        for (const j of jumps) j.x = prog.length;
        return;
      }
      case 'rep': {
        for (let i = 0; i < n.min; i++) gen(n.node);
        if (n.max === Infinity) {
          const split = { op: 'split' as const, x: 0, y: 0 };
          const loop = push(split);
          split.x = prog.length;
          gen(n.node);
          push({ op: 'jmp', x: loop });
          split.y = prog.length;
          return;
        }
        for (let i = n.min; i < n.max; i++) {
          const split = { op: 'split' as const, x: 0, y: 0 };
          push(split);
          split.x = prog.length;
          gen(n.node);
          split.y = prog.length;
        }
      }
    }
  };
  gen(root);
  push({ op: 'match' });
  return prog;
}

/** Pike VM without captures: the set of live states, advanced one code unit at a time. */
function run(prog: Instr[], text: string, counter?: { steps: number }): boolean {
  const mark = new Int32Array(prog.length).fill(-1);
  let current: number[] = [];
  let next: number[] = [];
  let steps = 0;
  const stack: number[] = [];
  // The states reachable from `pc` without reading a character, at position `pos` (generation `pos`).
  const add = (list: number[], start: number, pos: number) => {
    stack.push(start);
    while (stack.length) {
      const pc = stack.pop()!;
      if (mark[pc] === pos) continue;
      mark[pc] = pos;
      steps++;
      const ins = prog[pc]!;
      if (ins.op === 'jmp') stack.push(ins.x);
      else if (ins.op === 'split') stack.push(ins.y, ins.x);
      else if (ins.op === 'bol') { if (pos === 0) stack.push(pc + 1); }
      else if (ins.op === 'eol') { if (pos === text.length) stack.push(pc + 1); }
      else list.push(pc);
    }
  };
  add(current, 0, 0);
  for (let pos = 0; pos < text.length && current.length; pos++) {
    const c = text.charCodeAt(pos);
    for (const pc of current) {
      const ins = prog[pc]!;
      if (ins.op === 'set' && contains(ins.set, c)) add(next, pc + 1, pos + 1);
    }
    [current, next] = [next, current];
    next.length = 0;
  }
  if (counter) counter.steps += steps;
  // An empty list means the loop stopped early: no state survived, no match.
  return current.some((pc) => prog[pc]!.op === 'match');
}
