import t from 'tap';
import {
  AclPatternError,
  firstReserved,
  compileAcl,
  isValidTopicFilter,
  isValidTopicName,
  mayPublish,
  mayReceive,
  maySubscribe,
  substituteDevice,
  topicMatches,
  validatePattern,
  type AclRules,
  type CompiledAcl,
} from '../acl/index.js';

const sensorProfile: AclRules = {
  pub: ['devices/{device}/telemetry', 'devices/{device}/events/#'],
  sub: ['devices/{device}/commands/#'],
};
const observerProfile: AclRules = { pub: ['devices/+/commands/#'], sub: ['devices/#'] };

function forDevice(rules: AclRules, id: string): CompiledAcl {
  return compileAcl({
    pub: rules.pub.map((p) => substituteDevice(p, id)),
    sub: rules.sub.map((p) => substituteDevice(p, id)),
  });
}

const sensor = forDevice(sensorProfile, 'd1');
const observer = forDevice(observerProfile, 'obs');
const everything = compileAcl({ pub: ['#', '$SYS/#', '$SYS/foo', '+/#'], sub: ['#'] });
const dollar = compileAcl({ pub: ['$devices/+/token/renew'], sub: ['$devices/d1/token/#', 'x//y', '/+', 'e/'] });

type Row = readonly [acl: CompiledAcl, name: string, input: string, expected: boolean];

const subscribeRows: readonly Row[] = [
  // escalation filters refused to the sensor
  [sensor, 'sensor', '#', false],
  [sensor, 'sensor', '+/#', false],
  [sensor, 'sensor', 'devices/+/telemetry', false],
  [sensor, 'sensor', 'devices/#', false],
  [sensor, 'sensor', 'devices/+/+', false],
  [sensor, 'sensor', 'devices/+/commands/#', false],
  [sensor, 'sensor', 'devices/d1/#', false],
  [sensor, 'sensor', '+/d1/commands/x', false],
  [sensor, 'sensor', '$SYS/#', false],
  [sensor, 'sensor', 'devices/d2/commands/#', false],
  [sensor, 'sensor', 'devices/d1/+/reboot', false],
  [sensor, 'sensor', 'devices/d1/+', false],
  [sensor, 'sensor', 'devices/d1', false],
  [sensor, 'sensor', 'devices/d1/commandsx', false],
  [sensor, 'sensor', 'devices/d1/telemetry', false],
  [sensor, 'sensor', 'devices/d1//commands/x', false],
  [sensor, 'sensor', '$share/g/devices/d1/commands/#', false],
  // allowed to the sensor
  [sensor, 'sensor', 'devices/d1/commands/#', true],
  [sensor, 'sensor', 'devices/d1/commands/+', true],
  [sensor, 'sensor', 'devices/d1/commands/reboot', true],
  [sensor, 'sensor', 'devices/d1/commands', true],
  [sensor, 'sensor', 'devices/d1/commands/+/x/#', true],
  [sensor, 'sensor', 'devices/d1/commands/', true],
  [sensor, 'sensor', 'devices/d1/commands//+', true],
  [sensor, 'sensor', 'devices/d1/commands/+/+/+', true],
  // observer
  [observer, 'observer', 'devices/#', true],
  [observer, 'observer', 'devices/+/telemetry', true],
  [observer, 'observer', 'devices/+/+', true],
  [observer, 'observer', 'devices', true],
  [observer, 'observer', 'devices/', true],
  [observer, 'observer', '#', false],
  [observer, 'observer', '+/telemetry', false],
  [observer, 'observer', '+/#', false],
  [observer, 'observer', 'devicesx/#', false],
  [observer, 'observer', '$SYS/#', false],
  // `$` topics: a leading wildcard pattern never covers a `$` filter
  [everything, 'everything', '#', true],
  [everything, 'everything', '+/+/x', true],
  [everything, 'everything', '$SYS/#', false],
  [everything, 'everything', '$SYS/broker/uptime', false],
  [everything, 'everything', '$devices/d1/token/renew', false],
  [everything, 'everything', '$share/g/a', false],
  [everything, 'everything', '$share', false],
  [dollar, 'dollar', '$devices/d1/token/#', true],
  [dollar, 'dollar', '$devices/d1/token/+', true],
  [dollar, 'dollar', '$devices/d1/token', true],
  [dollar, 'dollar', '$devices/+/token/#', false],
  [dollar, 'dollar', '+/d1/token/#', false],
  // empty levels are literals
  [dollar, 'dollar', 'x//y', true],
  [dollar, 'dollar', 'x/+/y', false],
  [dollar, 'dollar', 'x/y', false],
  [dollar, 'dollar', '/a', true],
  [dollar, 'dollar', '/', true],
  [dollar, 'dollar', '/+', true],
  [dollar, 'dollar', '/#', false],
  [dollar, 'dollar', 'e/', true],
  [dollar, 'dollar', 'e', false],
  [dollar, 'dollar', 'e/+', false],
  // malformed filters
  [everything, 'everything', '', false],
  [everything, 'everything', 'a/#/b', false],
  [everything, 'everything', 'a+/b', false],
  [everything, 'everything', 'a/+b', false],
  [everything, 'everything', 'a/#b', false],
  [everything, 'everything', 'a/b#', false],
  [everything, 'everything', '##', false],
  [everything, 'everything', 'a/++', false],
  [everything, 'everything', 'a\u0000b', false],
  [everything, 'everything', 'a/'.repeat(40000), false],
  [everything, 'everything', 'é'.repeat(32768), false],
  [everything, 'everything', 'é'.repeat(32767), true],
];

const publishRows: readonly Row[] = [
  [sensor, 'sensor', 'devices/d1/telemetry', true],
  [sensor, 'sensor', 'devices/d1/events/boot', true],
  [sensor, 'sensor', 'devices/d1/events', true],
  [sensor, 'sensor', 'devices/d1/events/', true],
  [sensor, 'sensor', 'devices/d1/events/a/b/c', true],
  [sensor, 'sensor', 'devices/d2/telemetry', false],
  [sensor, 'sensor', 'devices/d1/telemetry/x', false],
  [sensor, 'sensor', 'devices/d1/telemetry/', false],
  [sensor, 'sensor', 'devices/d1', false],
  [sensor, 'sensor', 'devices/d1/eventsx', false],
  [sensor, 'sensor', 'devices/d1/commands/x', false],
  [sensor, 'sensor', '$SYS/foo', false],
  [sensor, 'sensor', 'devices/+/telemetry', false],
  [sensor, 'sensor', 'devices/d1/events/#', false],
  [sensor, 'sensor', '', false],
  [sensor, 'sensor', 'devices/d1/telemetry\u0000', false],
  [observer, 'observer', 'devices/x/commands/y', true],
  [observer, 'observer', 'devices/x/commands', true],
  [observer, 'observer', 'devices//commands/y', true],
  [observer, 'observer', 'devices/x/telemetry', false],
  [observer, 'observer', 'devices/x', false],
  // `$SYS` never, even with `#` and `$SYS/#` patterns
  [everything, 'everything', '$SYS/foo', false],
  [everything, 'everything', '$SYS', false],
  [everything, 'everything', '$SYS/broker/x/heartbeat', false],
  [everything, 'everything', '$SYSfoo', false],
  [everything, 'everything', '$devices/x/token/renew', false],
  [everything, 'everything', 'a', true],
  [everything, 'everything', 'a/b/c', true],
  [everything, 'everything', '/', true],
  [everything, 'everything', 'a/+', false],
  [dollar, 'dollar', '$devices/x/token/renew', true],
  [dollar, 'dollar', '$devices/x/token/renew/y', false],
  [dollar, 'dollar', '$devices//token/renew', true],
];

t.test('subscribe table', async (t) => {
  for (const [acl, name, filter, expected] of subscribeRows) {
    t.equal(maySubscribe(acl, filter), expected, `${name} subscribe ${JSON.stringify(filter.slice(0, 40))}`);
  }
});

t.test('publish table', async (t) => {
  for (const [acl, name, topic, expected] of publishRows) {
    t.equal(mayPublish(acl, topic), expected, `${name} publish ${JSON.stringify(topic)}`);
  }
});

t.test('devices of one profile share one compiled template, and it decides as their substituted patterns do', async (t) => {
  const shared = (rules: AclRules, id: string) => compileAcl({ pub: rules.pub.map((p) => substituteDevice(p, id)), sub: rules.sub.map((p) => substituteDevice(p, id)) }, id);
  const sensorShared = shared(sensorProfile, 'd1'), observerShared = shared(observerProfile, 'obs');
  const twin = (acl: CompiledAcl) => (acl === sensor ? sensorShared : acl === observer ? observerShared : null);
  for (const [acl, name, filter, expected] of subscribeRows) {
    const s = twin(acl);
    if (s) t.equal(maySubscribe(s, filter), expected, `shared ${name} subscribe ${JSON.stringify(filter.slice(0, 40))}`);
  }
  for (const [acl, name, topic, expected] of publishRows) {
    const s = twin(acl);
    if (!s) continue;
    t.equal(mayPublish(s, topic), expected, `shared ${name} publish ${JSON.stringify(topic)}`);
    if (isValidTopicName(topic)) t.equal(mayReceive(s, topic), mayReceive(acl, topic), `shared ${name} receive ${JSON.stringify(topic)}`);
  }

  const d2 = shared(sensorProfile, 'd2');
  t.equal(d2.rules, sensorShared.rules, 'one template for every sensor');
  t.ok(maySubscribe(d2, 'devices/d2/commands/#'));
  t.notOk(maySubscribe(d2, 'devices/d1/commands/#'), 'the template holds no other device id');
  t.ok(mayPublish(d2, 'devices/d2/telemetry'));
  t.notOk(mayPublish(d2, 'devices/d1/telemetry'));
  t.ok(mayReceive(d2, 'devices/d2/commands/reboot'));
  t.notOk(mayReceive(d2, 'devices/d1/commands/reboot'));

  // Only whole levels equal to the id are taken out: a level that merely contains it stays literal.
  const ab = compileAcl({ pub: ['ab/ab-1/+'], sub: ['x/ab', 'x/ab-1'] }, 'ab');
  const cd = compileAcl({ pub: ['cd/cd-1/+'], sub: ['x/cd', 'x/cd-1'] }, 'cd');
  t.not(ab.rules, cd.rules, 'different literal levels, different templates');
  t.ok(mayPublish(ab, 'ab/ab-1/z'));
  t.notOk(mayPublish(ab, 'ab/ab/z'));
  t.notOk(mayPublish(cd, 'cd/ab-1/z'));
  t.ok(maySubscribe(ab, 'x/ab-1'));
  t.notOk(maySubscribe(cd, 'x/ab-1'));
  t.ok(maySubscribe(cd, 'x/cd'));
  // Without an id nothing is taken out: an empty level stays an empty level.
  const none = compileAcl({ pub: ['a//b'], sub: ['a//b'] });
  t.ok(mayPublish(none, 'a//b'));
  t.notOk(mayPublish(none, 'a/x/b'));
});

const matchRows: readonly (readonly [pattern: string, topic: string, expected: boolean])[] = [
  ['#', 'a', true],
  ['#', 'a/b/c', true],
  ['#', '/', true],
  ['#', '$SYS/x', false],
  ['+/#', '$x', false],
  ['+', '$x', false],
  ['$x/#', '$x', true],
  ['$x/+', '$x/a', true],
  ['a/+/$y', 'a/b/$y', true],
  ['a/#', 'a', true],
  ['a/#', 'a/', true],
  ['a/#', 'ab', false],
  ['a/+', 'a', false],
  ['a/+', 'a/', true],
  ['a/+', 'a/b/c', false],
  ['+/+', '/', true],
  ['+', '/', false],
  ['/+', '/x', true],
  ['a//b', 'a//b', true],
  ['a//b', 'a/b', false],
  ['a/+/b', 'a//b', true],
  ['a/b', 'a/b', true],
  ['a/b', 'a/bc', false],
  ['a/bc', 'a/b', false],
  ['a/#/b', 'a/x/b', false], // malformed pattern
  ['a/b', 'a/+', false], // wildcard in topic name
];

t.test('topicMatches table', async (t) => {
  for (const [pattern, topic, expected] of matchRows) {
    t.equal(topicMatches(pattern, topic), expected, `${pattern} ~ ${topic}`);
  }
});

t.test('validation helpers', async (t) => {
  t.ok(isValidTopicName('a//b'));
  t.ok(isValidTopicName('$SYS/x'), 'syntactically fine; policy refuses it');
  t.notOk(isValidTopicName(''));
  t.notOk(isValidTopicName('a/#'));
  t.notOk(isValidTopicName('a+'));
  t.ok(isValidTopicFilter('+/+/#'));
  t.ok(isValidTopicFilter('//'));
  t.notOk(isValidTopicFilter('#/'));
  t.notOk(isValidTopicFilter('+a'));
});

t.test('mayReceive', async (t) => {
  t.ok(mayReceive(sensor, 'devices/d1/commands/reboot'));
  t.ok(mayReceive(sensor, 'devices/d1/commands'));
  t.notOk(mayReceive(sensor, 'devices/d2/commands/reboot'));
  t.notOk(mayReceive(everything, '$SYS/x'));
});

t.test('{device} substitution and pattern validation', async (t) => {
  t.equal(substituteDevice('devices/{device}/x/{device}', 'a.b:c-1_2'), 'devices/a.b:c-1_2/x/a.b:c-1_2');
  t.equal(substituteDevice('dev-{device}/#', 'z'), 'dev-z/#');
  t.equal(substituteDevice('no/vars', 'z'), 'no/vars');
  for (const bad of ['a/b', '+', '#', '', 'x'.repeat(129), 'a$&b', 'a b', '{device}']) {
    t.throws(() => substituteDevice('devices/{device}', bad), { code: 'ERR_ACL_PATTERN' }, `unsafe id ${JSON.stringify(bad)}`);
  }
  t.doesNotThrow(() => substituteDevice('x/{device}', 'x'.repeat(128)));

  for (const ok of ['devices/{device}/commands/#', 'devices/+/commands/#', '#', '+/#', '{device}/#', 'a//b', 'dev-{device}', 'a/$b']) {
    t.doesNotThrow(() => validatePattern(ok), `valid ${ok}`);
  }
  for (const bad of ['devices/{id}/x', '{Device}/x', '{}/x', 'a/{device', 'a/device}', 'a/{{device}}', '', 'a/#/b', 'a/{device}#', 'a/+{device}', 'a\u0000']) {
    t.throws(() => validatePattern(bad), AclPatternError, `invalid ${JSON.stringify(bad)}`);
  }
  // Issue 19: a `$` pattern reaches other devices' renewal and claim answers; none in a profile, grant or token.
  for (const reserved of ['$devices/{device}/token/renew', '$devices/#', '$claims/+/provision/accepted', '$SYS/#', '$', '$share/g/x']) {
    t.throws(() => validatePattern(reserved), { code: 'ERR_ACL_PATTERN', message: /is a broker topic/ }, `reserved ${reserved}`);
  }
  t.equal(firstReserved({ pub: ['a/b', '$devices/x/token/renew'], sub: ['$SYS/#'] }), '$devices/x/token/renew');
  t.equal(firstReserved({ pub: ['#'], sub: ['+/#', 'a/$b'] }), null, 'a leading wildcard or a later $ level is no broker topic');
  const err = t.throws(() => validatePattern('a/{tenant}'));
  t.equal((err as AclPatternError).code, 'ERR_ACL_PATTERN');
  t.match((err as Error).message, /\{tenant\}/);

  const acl = compileAcl({ pub: ['a/#/b', 'ok'], sub: ['x+', 'y'] });
  t.ok(mayPublish(acl, 'ok'), 'valid patterns survive next to malformed ones');
  t.notOk(mayPublish(acl, 'a/z/b'), 'malformed publish pattern grants nothing');
  t.ok(maySubscribe(acl, 'y'));
  t.notOk(maySubscribe(acl, 'x+'), 'malformed subscribe pattern grants nothing');
});

/** mulberry32: tiny seeded PRNG so the property check is deterministic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const FILTER_ALPHABET = ['a', 'b', '+', '#', '', '$x'] as const;
const TOPIC_ALPHABET = ['a', 'b', '', '$x'] as const;

function randomFilter(rand: () => number): string {
  for (;;) {
    const n = 1 + Math.floor(rand() * 4);
    const levels: string[] = [];
    for (let i = 0; i < n; i++) levels.push(FILTER_ALPHABET[Math.floor(rand() * FILTER_ALPHABET.length)] ?? 'a');
    const f = levels.join('/');
    if (isValidTopicFilter(f)) return f;
  }
}

/** Every topic of 1..5 levels over TOPIC_ALPHABET (one longer than the longest filter, so `#` depth is exercised). */
function allTopics(): string[] {
  const out: string[] = [];
  let layer: string[][] = [[]];
  for (let len = 1; len <= 5; len++) {
    const next: string[][] = [];
    for (const prefix of layer) for (const l of TOPIC_ALPHABET) next.push([...prefix, l]);
    for (const levels of next) {
      const topic = levels.join('/');
      if (isValidTopicName(topic)) out.push(topic);
    }
    layer = next;
  }
  return out;
}

t.test('property: maySubscribe is sound (and exact for single patterns)', async (t) => {
  const rand = prng(0xc0ffee);
  const topics = allTopics();
  let allowed = 0;
  let soundFailures = 0;
  let exactFailures = 0;
  for (let round = 0; round < 400; round++) {
    const patterns = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => randomFilter(rand));
    const acl = compileAcl({ pub: [], sub: patterns });
    const filter = randomFilter(rand);
    const verdict = maySubscribe(acl, filter);
    const matched = topics.filter((topic) => topicMatches(filter, topic));
    const coveredByUnion = matched.every((topic) => patterns.some((p) => topicMatches(p, topic)));
    if (verdict) {
      allowed++;
      if (!coveredByUnion) {
        soundFailures++;
        t.fail(`over-permissive: ${JSON.stringify(patterns)} allowed ${filter}`);
      }
    }
    // With one pattern the rule should also be complete, except the documented
    // conservative gap: filter `#` is equivalent to pattern `+/#` but refused.
    const [only] = patterns;
    if (patterns.length === 1 && only !== undefined && !(filter === '#' && only === '+/#')) {
      const coveredBySingle = matched.every((topic) => topicMatches(only, topic));
      if (coveredBySingle !== verdict) {
        exactFailures++;
        t.fail(`single-pattern mismatch: ${only} vs ${filter}: got ${verdict}`);
      }
    }
  }
  t.equal(soundFailures, 0, 'never over-permissive');
  t.equal(exactFailures, 0, 'single-pattern coverage is exact');
  t.ok(allowed >= 20, `non-vacuous: ${allowed} filters allowed`);
});
