// `npm start`: runs `credbroker serve` with the arguments given after `--`. Given before it
// (`npm start --mqtt-port 1884`), npm keeps a serve option for itself (npm_config_mqtt_port)
// and passes its value on alone, which serve would refuse as "too many arguments": say how instead.
const { buildProgram, run } = await import('../dist/cli/main.js');

const serve = buildProgram().commands.find((c) => c.name() === 'serve');
for (const option of serve.options) {
  const flag = option.long;
  const value = process.env[`npm_config_${flag.slice(2).replace(/-/g, '_')}`];
  if (value === undefined) continue;
  const shown = value === 'true' ? (process.argv[2] ?? '') : value;
  process.stderr.write(`credbroker: npm took ${flag} for itself: put serve's options after "--", as in: npm start -- ${flag}${shown === '' || option.isBoolean() ? '' : ` ${shown}`}\n`);
  process.exit(2);
}
process.argv.splice(2, 0, 'serve');
run();
