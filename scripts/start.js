#!/usr/bin/env node
// `npm start`: the main job on embedded defaults — the protection server on
// https://127.0.0.1:7070 with its data in ./holdfast-data, and a local agent registered to it
// (state in ./holdfast-data/local-agent). The first start creates everything and protects
// nothing yet; it prints how to log in and what to do next. Ctrl-C stops both.
import { existsSync, readFileSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { hostname } from 'node:os';

const data = resolve(process.env.HOLDFAST_DATA ?? 'holdfast-data');
const listen = process.env.HOLDFAST_LISTEN ?? '127.0.0.1:7070';
const url = `https://${listen}`;
const agentState = join(data, 'local-agent');
const cli = new URL('../bin/holdfast.js', import.meta.url).pathname;
const env = { ...process.env, HOLDFAST_SERVER: url };

const children = [];
const stopAll = () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
};
process.on('SIGINT', stopAll);
process.on('SIGTERM', stopAll);

const server = spawn(process.execPath, [cli, 'server', '--data', data, '--listen', listen], { stdio: ['ignore', 'pipe', 'inherit'] });
children.push(server);
let out = '';
server.stdout.on('data', (d) => {
  out += d.toString();
  process.stdout.write(d);
});
server.on('exit', (code) => {
  stopAll();
  process.exitCode = code ?? 1;
});

await new Promise((res, rej) => {
  const t = setInterval(() => {
    if (out.includes('listening on')) {
      clearInterval(t);
      res();
    } else if (server.exitCode !== null) {
      clearInterval(t);
      rej(new Error('the server did not start'));
    }
  }, 100);
});

const token = readFileSync(join(data, 'admin-token'), 'utf8').trim();
const agentArgs = ['agent', '--state', agentState];
if (!existsSync(join(agentState, 'agent.json'))) {
  const r = spawnSync(process.execPath, [cli, 'agent-token', 'create', '--expires', '10m'], { env: { ...env, HOLDFAST_TOKEN: token }, encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(r.stderr);
    stopAll();
    process.exit(r.status ?? 1);
  }
  agentArgs.push('--server', url, '--join', r.stdout.trim(), '--name', (hostname().split('.')[0] || 'local').replace(/[^A-Za-z0-9._-]/g, '-'));
}
const agent = spawn(process.execPath, [cli, ...agentArgs], { stdio: 'inherit' });
children.push(agent);

console.log(`
Holdfast is running: ${url}  (a local agent is registered to it)
Web console: ${url}/ — make an administrator account first (the token authorizes it):
  HOLDFAST_SERVER=${url} HOLDFAST_TOKEN=$(cat ${join(data, 'admin-token')}) npx holdfast user add --role admin admin --password-file FILE
Log in from the command line with the administrator token in ${join(data, 'admin-token')}:
  export HOLDFAST_SERVER=${url} HOLDFAST_TOKEN=$(cat ${join(data, 'admin-token')})
  npx holdfast agents
  npx holdfast group create daily --sync-every 15m --points 08:00,12:00,20:00 --retain 14d
  npx holdfast source add --group daily --agent <name from 'agents'> --kind dir etc /etc
  npx holdfast sync etc --wait
Stop with Ctrl-C.`);
