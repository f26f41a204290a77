// The thread-id reuse attack on caller attribution: a root process's thread opened the node, made an ioctl and
// exited; `nobody` forks until a child holds that thread's tid and, through a file it opened itself, makes GETPARAM
// and VERSION with pointers valid in both processes (both mapped a page at the same address). A tid → process mapping
// that outlived the thread would write the answers into the root process's canary page. Server, victim and attacker
// run in one fresh PID + mount namespace with a pid_max of its own (tid-reuse-world.ts), so a wrap of the pid space
// takes a few hundred forks; the host's pid_max is never touched (checked before and after). The same attack by a
// root attacker (same user as the victim) shows the thread's exit alone invalidates the mapping.
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import { cannotSwitchUsers } from '../helpers/as-user';
import { collect } from '../helpers/clients';
import { probeFuse } from '../../cuse-dev/transport/auto';
import type { WorldConfig, WorldResult } from './tid-reuse-world';

const BINARY = path.resolve(__dirname, '../../../tests/c/bin/tid_reuse');
const WORLD = path.join(__dirname, 'tid-reuse-world.js');
const PID_MAX_PATH = '/proc/sys/kernel/pid_max';

/** pid_max per pid namespace (kernel >= 6.14): without it a write inside a namespace would change the host's. */
function perNamespacePidMax(): string | null {
  const [maj, min] = os.release().split('.').map(Number);
  if (!(maj! > 6 || (maj === 6 && min! >= 14))) return `kernel ${os.release()} has no pid_max per pid namespace (6.14+)`;
  return null;
}

function skipReason(): string | null {
  const user = cannotSwitchUsers();
  if (user) return user;
  const fuse = probeFuse();
  if (!fuse.ok) return fuse.reason;
  if (spawnSync('unshare', ['--version']).status !== 0) return 'unshare (util-linux) not found';
  if (!fs.existsSync(BINARY)) return 'tests/c/bin/tid_reuse not built (make -C tests/c)';
  return perNamespacePidMax();
}

const why = skipReason();
const maybe = why ? test.serial.skip : test.serial;

maybe(`a reused thread id never lends another process's memory: nobody's child holding a root thread's old tid is served in its own memory, the victim's canary is untouched, other clients keep working${why ? ` (skipped: ${why})` : ''}`, async (t) => {
  t.timeout(110_000);
  const hostPidMax = fs.readFileSync(PID_MAX_PATH, 'latin1');
  const cfg: WorldConfig = { pidMax: 1000, lastPid: 400, binary: BINARY, scenarios: ['nobody', 'root'], maxForks: 3000, addr: '0x3a5a00000000' };
  const d = await collect(spawn('unshare', ['--pid', '--mount', '--fork', '--mount-proc', process.execPath, WORLD, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe'] }), 100_000);
  t.is(fs.readFileSync(PID_MAX_PATH, 'latin1'), hostPidMax, 'the host\'s pid_max is untouched');
  const line = /^RESULT (.*)$/m.exec(d.stdout);
  t.truthy(line, `no RESULT line (exit ${d.code ?? d.signal}):\n${d.stdout}\n${d.stderr}`);
  if (!line) return;
  const r = JSON.parse(line[1]!) as WorldResult;
  t.falsy(r.error, r.error);
  t.is(r.pidMax, String(cfg.pidMax), 'the namespace has its own small pid_max');
  t.is(r.scenarios.length, cfg.scenarios.length);
  for (const s of r.scenarios) {
    const who = `attacker ${s.attacker}`;
    t.regex(s.victimThread, /getparam 0 value 1$/, `${who}: the victim's thread was served before it exited`);
    t.regex(s.attack.stdout, /^reached 0 value 1$/m, `${who} reached the server (one ioctl answered): ${s.attack.stdout}${s.attack.stderr}`);
    const child = new RegExp(`^child ${s.victimTid} after (\\d+) forks: getparam (\\S+) value (-?\\d+) version (\\S+) name (\\S+)$`, 'm').exec(s.attack.stdout);
    t.truthy(child, `${who}: no child got the victim's tid ${s.victimTid}: ${s.attack.stdout}${s.attack.stderr}`);
    if (child) {
      t.log(`${who}: a child held tid ${s.victimTid} after ${child[1]} forks: ${child[0]}`);
      const [, , gp, value, ver, name] = child;
      // Served as itself (the answers in its own page), or refused with a documented errno: never the victim's memory.
      if (gp === '0') t.is(value, '1', `${who}: GETPARAM answered into the attacker's own page`);
      else t.true(['EINTR', 'EACCES'].includes(gp!), `${who}: GETPARAM ${gp}`);
      if (ver === '0') t.is(name, 'virtio_gpu', `${who}: VERSION's name written into the attacker's own page`);
      else t.true(['EINTR', 'EACCES'].includes(ver!), `${who}: VERSION ${ver}`);
    }
    t.is(s.canary, 'canary intact', `${who}: the victim's memory was written by the server`);
    t.is(s.victimAfter, 'victim getparam 0 value 1', `${who}: the victim is still served`);
  }
  t.regex(r.fresh.thread, /getparam 0 value 1$/, 'a client after the attacks is served');
  t.is(r.fresh.canary, 'canary intact');
  t.is(r.fresh.after, 'victim getparam 0 value 1');
  t.is(r.server.code, 0, r.server.stderr);
  t.regex(r.server.stdout, /stopped \(stop\)/);
  t.notRegex(r.server.stderr, /BUG/);
});
