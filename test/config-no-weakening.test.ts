// No configuration turns a check off (issue #19): the test-only weakening is
// passed to startBroker in code. A config file, flag or environment variable
// that names it, or any unknown key, stops `serve` with exit 2 and one line.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lines, runCli } from './helpers/cli.js';
import { loadConfig } from '../broker/index.js';

const dir = mkdtempSync(join(tmpdir(), 'credbroker-weaken-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, body: unknown) => {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(body));
  return path;
};
// Ports off: were the setting accepted, serve would get as far as opening the registry, not fail on the config.
const SERVE = ['serve', '--db', join(dir, 'none.db'), '--mqtt-port', 'off', '--ws-port', 'off', '--http-port', 'off'];

t.test('refused by serve with exit 2 and one line', async (t) => {
  const cases: { name: string; args: string[]; env?: Record<string, string>; message: RegExp }[] = [
    { name: 'weaken in a config file (the issue\'s file)', args: ['--config', file('weaken.json', { weaken: { ignoreRevocations: 'false', ignoreRevocation: true } })], message: /unknown config setting "weaken" in config file .*weaken\.json/ },
    { name: 'weaken with a real switch', args: ['--config', file('weaken2.json', { weaken: { skipPublishCheck: true } })], message: /unknown config setting "weaken"/ },
    { name: 'a switch at the top level', args: ['--config', file('top.json', { ignoreRevocations: true })], message: /unknown config setting "ignoreRevocations"/ },
    { name: 'an unknown key with a hint', args: ['--config', file('typo.json', { mqttPrt: 1883 })], message: /unknown config setting "mqttPrt" .*did you mean "mqttPort"\?/ },
    { name: '--weaken', args: ['--weaken', '{"noLimits":true}'], message: /unknown option '--weaken'/ },
    { name: 'CREDBROKER_WEAKEN', args: [], env: { CREDBROKER_WEAKEN: '{"ignoreRevocations":true}' }, message: /CREDBROKER_WEAKEN is not a setting: no configuration turns a check off/ },
    { name: 'CREDBROKER_WEAKEN_IGNORE_REVOCATIONS', args: [], env: { CREDBROKER_WEAKEN_IGNORE_REVOCATIONS: 'true' }, message: /CREDBROKER_WEAKEN_IGNORE_REVOCATIONS is not a setting/ },
  ];
  for (const c of cases) {
    const r = await runCli([...SERVE, ...c.args], { env: c.env });
    t.equal(r.code, 2, `${c.name}: exit 2 (${r.stderr.trim()})`);
    t.equal(lines(r.stderr).length, 1, `${c.name}: one line`);
    t.match(r.stderr, c.message, c.name);
  }
});

t.test('the library\'s config loader has no weakening either', async (t) => {
  t.throws(() => loadConfig({ weaken: { ignoreRevocations: true } }, {}), { code: 'ERR_CONFIG', message: /unknown config setting "weaken"/ });
  t.notOk('weaken' in loadConfig({}, {}), 'no weaken in a loaded config');
});
