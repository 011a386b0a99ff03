// The operator console in a real browser (Debian's headless chromium, driven by
// playwright-core) against a real broker, its API and a real registry: an operator
// signs in, searches a device and revokes it with a reason, and the device's live
// MQTT.js session is closed; a viewer is offered no revoke, restore or rotate; HTML in
// a reason or a grant reason is shown as text and runs nothing; every request the page
// makes goes to 127.0.0.1. The run writes the README's screenshots of the fleet page
// and of a device page (docs/images/console-fleet.png, console-device.png). The device
// list asks the server for one page of 50 at a time (it never loads the whole fleet).
import t from 'tap';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { MqttClient } from 'mqtt';
import { chromium, type Browser, type Page } from 'playwright-core';
import { consoleMount } from '../broker/console-assets.js';
import { addOperator } from '../operations/index.js';
import { connect, startTestBroker } from './helpers/broker.js';
import { buildConsole } from './helpers/console.js';
import { within } from './helpers/wait.js';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const IMAGES = fileURLToPath(new URL('../docs/images/', import.meta.url));
/** Markup that would run if the page ever rendered data as HTML. */
const HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';

buildConsole();
const b = await startTestBroker({}, { opsMounts: [consoleMount()] });
t.teardown(() => b.close());
const base = `http://127.0.0.1:${b.broker.ports.http}`;
const operator = await addOperator(b.issuer.reg, 'alice', 'operator');
const viewer = await addOperator(b.issuer.reg, 'vera', 'viewer');
const [pump1, pump2] = await b.provision(['pump-1', 'pump-2', 'pump-10', 'valve-9']);
// More than a page of the device list (50): paging is the server's.
await b.provision(Array.from({ length: 60 }, (_, i) => `bulk-${String(i).padStart(3, '0')}`));

/** A device's live MQTT.js session. */
async function online(cred: { deviceId: string; accessToken: string }): Promise<MqttClient> {
  const c = await connect(b.url, { clientId: cred.deviceId, username: cred.deviceId, password: cred.accessToken });
  if (!c.client) throw new Error(`${cred.deviceId} could not connect: CONNACK ${c.code}`);
  t.teardown(() => { c.client!.end(true); });
  return c.client;
}
const session1 = await online(pump1!);
await online(pump2!);

const browser: Browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: 60_000 });
t.teardown(() => browser.close());

/** Every request any page made, and every script error or CSP report it logged. */
const requests: string[] = [];
const problems: string[] = [];

async function signedIn(name: string, password: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  t.teardown(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('request', (r) => { requests.push(r.url()); });
  page.on('pageerror', (e) => { problems.push(`page error: ${e.message}`); });
  page.on('console', (m) => { if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text()); });
  await page.goto(`${base}/console/`);
  await page.getByLabel('Operator name').fill(name);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('operator').filter({ hasText: name }).waitFor();
  return page;
}

async function searchDevices(page: Page, search: string): Promise<void> {
  await page.getByRole('link', { name: 'Devices', exact: true }).click();
  await page.getByLabel('search devices').fill(search);
  await page.getByRole('button', { name: 'Search' }).click();
}

const pwned = (page: Page) => page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned ?? null);

t.test('an operator signs in, searches a device and revokes it with a reason: its MQTT session is closed', async (t) => {
  const page = await signedIn(operator.name, operator.password);
  await page.getByTestId('sessions').waitFor();
  mkdirSync(IMAGES, { recursive: true });
  await page.screenshot({ path: `${IMAGES}console-fleet.png`, fullPage: true });

  await searchDevices(page, 'pump-1');
  const rows = page.locator('tbody tr[data-device]');
  await page.locator('tr[data-device="pump-10"]').waitFor();
  t.same((await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-device')))).sort(), ['pump-1', 'pump-10'], 'the server\'s search: pump-1 and pump-10, not pump-2 or valve-9');

  const closed = new Promise<void>((resolve) => session1.once('close', () => resolve()));
  const row = page.locator('tr[data-device="pump-1"]');
  await row.getByRole('button', { name: 'Revoke' }).click();
  await row.getByLabel('reason').fill(`stolen ${HOSTILE}`);
  await row.getByRole('button', { name: 'Confirm revoke' }).click();
  await within('the revoked device\'s MQTT session to close', closed, 10_000);
  await row.getByText('revoked', { exact: false }).first().waitFor();
  t.equal((await b.issuer.reg.devices.get('pump-1'))?.status, 'revoked');

  await row.getByRole('link', { name: 'pump-1' }).click();
  await page.getByTestId('device-status').filter({ hasText: 'revoked' }).waitFor();
  t.equal(await page.getByTestId('revoked-reason').textContent(), `stolen ${HOSTILE}`, 'the reason is shown as text');
  t.equal(await page.locator('main img').count(), 0, 'no element was made from the reason');
  t.equal(await pwned(page), null, 'no script from the reason ran');
  t.match(await page.locator('table.audit').textContent(), /operator:alice|alice/, 'the revoke is audited under the operator');

  // A connected device's page: its session and live token (id and expiry only), for the README.
  await page.goto(`${base}/console/#/devices/pump-2`);
  await page.getByTestId('device-status').filter({ hasText: 'active' }).waitFor();
  await page.getByRole('heading', { name: 'Live tokens' }).waitFor();
  const text = await page.locator('main').textContent() ?? '';
  t.notMatch(text, /eyJ/, 'no token string on the device page');
  await page.screenshot({ path: `${IMAGES}console-device.png`, fullPage: true });

  // A grant whose reason is markup: the token is shown once, the reason as text.
  await page.getByRole('link', { name: 'Grants' }).click();
  await page.getByLabel('grant name').fill('dashboard-1');
  await page.getByLabel('subscribe patterns').fill('devices/pump-2/telemetry');
  await page.getByLabel('grant reason').fill(HOSTILE);
  await page.getByRole('button', { name: 'Issue grant' }).click();
  t.match(await page.getByTestId('secret').inputValue(), /^eyJ/, 'the grant token is shown once');
  await page.getByRole('button', { name: 'I have stored it' }).click();
  t.equal(await page.getByTestId('secret').count(), 0, 'and is gone once stored');
  const grant = page.locator('tr[data-grant="dashboard-1"]');
  await grant.waitFor();
  t.match(await grant.textContent(), HOSTILE, 'the grant reason is shown as text');
  t.equal(await page.locator('main img').count(), 0);
  t.equal(await pwned(page), null, 'no script from the grant reason ran');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
});

t.test('a viewer sees devices but no revoke, restore or rotate', async (t) => {
  const page = await signedIn(viewer.name, viewer.password);
  await searchDevices(page, 'p');
  await page.locator('tr[data-device="pump-2"]').waitFor();
  await page.locator('tr[data-device="pump-1"]').waitFor(); // revoked above: a restore would be offered to an operator
  t.equal(await page.getByRole('button', { name: /revoke|restore/i }).count(), 0, 'no revoke or restore in the list');
  await page.getByRole('link', { name: 'pump-2' }).click();
  await page.getByTestId('device-status').waitFor();
  t.equal(await page.getByRole('button', { name: /revoke|restore/i }).count(), 0, 'none on the device page');
  await page.getByRole('link', { name: 'Keys' }).click();
  await page.locator('main table').waitFor();
  t.equal(await page.getByRole('button', { name: /rotate/i }).count(), 0, 'no key rotation');
  await page.getByRole('link', { name: 'Grants' }).click();
  await page.locator('tr[data-grant="dashboard-1"]').waitFor();
  t.equal(await page.getByRole('button', { name: /revoke|issue/i }).count(), 0, 'no grant issue or revoke');
});

t.test('the device list asks the server for one page at a time', async (t) => {
  const page = await signedIn(viewer.name, viewer.password);
  await searchDevices(page, 'bulk-');
  await page.locator('tr[data-device="bulk-049"]').waitFor();
  t.equal(await page.locator('tbody tr[data-device]').count(), 50, 'a page of 50');
  t.equal(await page.locator('tr[data-device="bulk-050"]').count(), 0);
  t.ok(requests.some((u) => u.endsWith('/api/v1/devices?search=bulk-&limit=50')), 'the search and the page size went to the server');
  await page.getByRole('button', { name: 'Next page' }).click();
  await page.locator('tr[data-device="bulk-059"]').waitFor();
  t.equal(await page.locator('tbody tr[data-device]').count(), 10, 'the last 10 on the next page');
  t.equal(await page.locator('tr[data-device="bulk-000"]').count(), 0);
  t.ok(requests.some((u) => u.endsWith('/api/v1/devices?search=bulk-&limit=50&after=bulk-049')), 'the next page by the server\'s cursor');
  t.ok(await page.getByRole('button', { name: 'Next page' }).isDisabled(), 'no page after the last');
});

t.test('no request left 127.0.0.1 and the page broke no rule of its CSP', async (t) => {
  t.ok(requests.length > 10, `the pages made requests (${requests.length})`);
  const away = requests.filter((u) => { const url = new URL(u); return url.protocol !== 'data:' && url.hostname !== '127.0.0.1'; });
  t.same(away, [], 'every request went to 127.0.0.1');
  t.same(problems, [], 'no script error, no CSP refusal');
});
