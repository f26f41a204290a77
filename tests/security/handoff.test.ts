// Attacks on the uffd handoff (uffd/acquire.ts UffdHandoff on the client channel, uffd/channel.ts), made by
// tests/c/handoff_attack running as `nobody` against the channel a serving CLI opens (the same UffdHandoff with
// its cross-thread mailbox, world-connectable 0666 as by default). Each test first proves the attacker reached the
// server (its own real uffd is accepted), then attacks, and checks that legitimate clients — real processes
// handing over through the preload library — are served during and after it, that the log holds no path, and
// that the server's fd count comes back to where it was.
import test, { type ExecutionContext } from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { spawn, type ChildProcess } from 'child_process';
import { HANDOFF_PER_UID, HandoffMailbox, UffdHandoff, findPreload } from '../../uffd/acquire';
import { asUserArgv, cannotSwitchUsers, nobody, runAs, stage, type Stage } from '../helpers/as-user';
import { collect } from '../helpers/clients';

const ROOT = path.resolve(__dirname, '../../..');
const ATTACK = path.join(ROOT, 'tests/c/bin/handoff_attack');
const UFFD_CLIENT = path.join(ROOT, 'tests/c/bin/uffd_client');
const FUSE_HOLD = path.join(ROOT, 'tests/c/bin/fuse_hold');
const preload = findPreload();
const why = cannotSwitchUsers() ?? (!fs.existsSync(ATTACK) || !fs.existsSync(UFFD_CLIENT) || !fs.existsSync(FUSE_HOLD) ? 'tests/c not built (make -C tests/c)' : !preload ? 'preload library not built (npm install)' : null);
const t = why ? test.serial.skip : test.serial;
if (why) test(`handoff attacks: skipped (${why})`, (tt) => tt.pass());

let st: Stage;
test.before(() => { if (!why) st = stage([ATTACK, preload!, '/usr/bin/true']); });
test.after.always(() => { st?.remove(); });

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const fdCount = (): number => fs.readdirSync('/proc/self/fd').length;

interface Server { h: UffdHandoff; mailbox: HandoffMailbox; logs: string[]; fds0: number }

/** The server side as `serve` runs it: a handoff with a mailbox (the serving worker takes from it), world-connectable. */
async function server(tt: ExecutionContext): Promise<Server> {
  const fds0 = fdCount();
  const logs: string[] = [];
  const mailbox = new HandoffMailbox();
  const h = await UffdHandoff.listen({ mailbox, log: (m) => logs.push(m) });
  tt.is(fs.statSync(h.name).mode & 0o777, 0o666, 'the socket is world-connectable, as the node by default');
  tt.is(fs.statSync(path.dirname(h.name)).mode & 0o777, 0o711, 'its directory is the server\'s own, searchable, not listable');
  return { h, mailbox, logs, fds0 };
}

async function stop(tt: ExecutionContext, s: Server): Promise<void> {
  await s.h.close();
  tt.false(fs.existsSync(path.dirname(s.h.name)), 'the channel directory is removed at close');
  await settle(tt, s.fds0, 'after close');
  tt.false(s.logs.some((l) => l.includes('/')), `no path in the log:\n${s.logs.join('\n')}`);
}

/** Wait (bounded) for our fd count to come back to `n`. */
async function settle(tt: ExecutionContext, n: number, what: string): Promise<void> {
  const end = Date.now() + 3000;
  while (fdCount() !== n && Date.now() < end) await sleep(50);
  tt.is(fdCount(), n, `server fd count back ${what}`);
}

/** A legitimate client: a real process (root) started with the preload library; true when its uffd was accepted. */
async function legit(s: Server): Promise<boolean> {
  const p = spawn(st.at('true'), [], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...s.h.env(process.env, st.at(path.basename(preload!))), VIRTGPU_EMU_PRELOAD_DEBUG: '1' } });
  const d = await collect(p, 10_000);
  return d.code === 0 && /handed to \S+: OK$/m.test(d.stderr);
}

/** The attack client as nobody, to completion. */
async function attack(args: string[]): Promise<string> {
  const d = await runAs(nobody()!, st.at('handoff_attack'), args, { timeoutMs: 20_000 });
  if (d.code !== 0) throw new Error(`handoff_attack ${args.join(' ')} -> ${d.code}\n${d.stdout}\n${d.stderr}`);
  return d.stdout;
}

/** The attack client as nobody, kept running (stdin open) until end() closes its stdin. */
function attackHeld(args: string[]): { p: ChildProcess; out: () => string; end: () => Promise<void> } {
  const argv = asUserArgv(nobody()!, st.at('handoff_attack'), args);
  const p = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin' }, cwd: '/' });
  let out = '';
  p.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  p.stdin!.on('error', () => undefined);
  const exited = new Promise<void>((r) => p.on('close', () => r()));
  return { p, out: () => out, end: async () => { p.stdin!.end(); const k = setTimeout(() => p.kill('SIGKILL'), 5000); await exited; clearTimeout(k); } };
}

async function until(what: string, pred: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) { if (Date.now() > end) throw new Error(`timed out waiting for ${what}`); await sleep(20); }
}

/** A root process holding its own registered userfaultfd (tests/c/uffd_client): what an attacker would steal or probe. */
async function victim(): Promise<{ pid: number; addr: string; ufd: string; ask: (cmd: string) => Promise<string>; kill: () => Promise<void> }> {
  const p = spawn(UFFD_CLIENT, [], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  p.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  const closed = new Promise((r) => p.on('close', r));
  const ask = async (cmd: string): Promise<string> => {
    const n = out.split('\n').length;
    p.stdin!.write(cmd + '\n');
    await until(`victim: ${cmd}`, () => out.split('\n').length > n, 5000);
    return out.trim().split('\n').pop()!;
  };
  const kill = async (): Promise<void> => { p.kill('SIGKILL'); await closed; };
  try {
    const addr = (await ask('mmap 4')).split(' ')[1]!;
    const ufd = (await ask(`ownuffd ${addr} 16384`)).split(' ')[1]!;
    return { pid: p.pid!, addr, ufd, ask, kill };
  } catch (e) { await kill(); throw e; }
}

/** The attacker reaches the server: its own real userfaultfd is accepted. */
async function reach(tt: ExecutionContext, s: Server): Promise<void> {
  tt.is((await attack(['handoff', s.h.name])).trim(), 'reply OK', 'the attacker (nobody) reached the server: its own uffd was accepted');
}

t('(a) a forged uffd handed over (a pipe, an eventfd, a socket, a memfd) is refused, logged once per kind without a path', async (tt) => {
  tt.timeout(60_000);
  const s = await server(tt);
  const base = fdCount();
  try {
    tt.true(await legit(s), 'a legitimate client is served before');
    await reach(tt, s);
    for (const kind of ['pipe', 'eventfd', 'socket', 'memfd', 'pipe', 'memfd']) {
      tt.regex(await attack(['forge', s.h.name, kind]), /^reply ERR EBADF ms \d+$/m, `${kind} sent as a uffd is refused`);
    }
    tt.true(await legit(s), 'a legitimate client is served after');
    const refusals = s.logs.filter((l) => l.includes('handoff uffd refused'));
    tt.is(refusals.length, 4, `one line per kind:\n${s.logs.join('\n')}`);
    for (const k of ['a pipe', 'an eventfd', 'a socket', 'a memfd']) tt.is(refusals.filter((l) => l.includes(k)).length, 1, k);
    tt.is(s.h.refusals.total, 6);
    await until('the exited clients\' uffds swept', () => s.h.size === 0, 3000);
    await settle(tt, base, 'once the exited clients\' uffds are swept (no forged fd kept)');
  } finally { await stop(tt, s); }
});

t('(c) theft: claiming a root process\'s pid (and its uffd\'s fd number) gets nothing; the victim keeps working', async (tt) => {
  tt.timeout(60_000);
  const s = await server(tt);
  const v = await victim();
  try {
    tt.regex(v.ufd, /^\d+$/, 'the victim (root) holds its own registered userfaultfd');
    await reach(tt, s);
    const out = await attack(['claim', s.h.name, String(v.pid), v.ufd]);
    tt.regex(out, /^reply ERR EPERM$/m, 'a message claiming the victim\'s pid is refused');
    tt.regex(out, /^forged sendmsg EPERM$/m, 'the kernel refuses credentials forged to the victim\'s pid');
    const none = await attack(['claim', s.h.name, String(v.pid), '-1']);
    tt.regex(none, /^reply ERR EPERM$/m, 'same without an fd attached');
    tt.false(s.mailbox.pids().includes(v.pid), 'nothing is held for the victim');
    tt.is(await v.ask(`munmap ${v.addr} 4096`), 'ok', 'the victim still runs its own uffd (its munmap is read by its own reader)');
    tt.is(await v.ask(`write ${Number(v.addr) + 4096} 1 7`), 'ok');
    tt.true(await legit(s), 'a legitimate client is served after');
  } finally {
    await v.kill();
    await stop(tt, s);
  }
});

t('(d) oracle: probing another process\'s fd table gets one answer whatever the fd, and nothing of it reaches the log', async (tt) => {
  tt.timeout(60_000);
  const s = await server(tt);
  const v = await victim();
  try {
    await reach(tt, s);
    const before = s.logs.length;
    // 0-2: the victim's stdio pipes; its userfaultfd; others (files, none at all).
    const out = await attack(['oracle', s.h.name, String(v.pid), '0', '1', '2', v.ufd, '3', '4', '20', '999']);
    const answers = out.trim().split('\n').map((l) => l.split(' ').slice(2).join(' '));
    tt.is(answers.length, 8);
    tt.deepEqual(new Set(answers), new Set(['ERR EINVAL|ERR EPERM']), `the same answer for every fd:\n${out}`);
    const added = s.logs.slice(before);
    tt.true(added.length <= 2, `at most one line per kind (malformed, credentials):\n${added.join('\n')}`);
    tt.false(added.some((l) => /\/|pipe|socket|file|anon/.test(l)), `nothing about the victim's fds:\n${added.join('\n')}`);
    tt.true(await legit(s), 'a legitimate client is served after');
  } finally {
    await v.kill();
    await stop(tt, s);
  }
});

t('(e) flood: idle connections are closed after 2 s, the 65th of one uid is refused, legitimate handoffs go through meanwhile', async (tt) => {
  tt.timeout(60_000);
  const s = await server(tt);
  try {
    await reach(tt, s);
    const flood = attack(['flood', s.h.name, '80']);
    const uid = nobody()!.uid;
    await until('the flood connected', () => s.h.channel.connections(uid) >= 64, 5000);
    tt.is(s.h.channel.connections(uid), 64, 'at most 64 connections of one uid are open');
    for (let i = 0; i < 3; i++) tt.true(await legit(s), `a legitimate client is served during the flood (${i})`);
    const out = await flood;
    tt.regex(out, /^connected 80$/m);
    tt.regex(out, /^refused 16$/m, 'every connection past the 64th is answered ERR EAGAIN at once');
    const m = /^closed (\d+) of (\d+) after-ms (\d+) (\d+)$/m.exec(out);
    tt.truthy(m, out);
    tt.is(m![1], '64', 'every idle connection was closed by the server');
    tt.true(Number(m![3]) >= 1500 && Number(m![4]) <= 4000, `closed about 2 s after they were accepted (${m![3]}..${m![4]} ms)`);
    tt.is(s.h.channel.stats.timedOut, 64);
    tt.is(s.h.channel.stats.open, 0);
    tt.true(await legit(s), 'a legitimate client is served after');
    await reach(tt, s);
  } finally { await stop(tt, s); }
});

t(`(f) exhaust: one uid holds at most ${HANDOFF_PER_UID} waiting uffds; other users still get theirs`, async (tt) => {
  tt.timeout(60_000);
  const s = await server(tt);
  const held = attackHeld(['exhaust', s.h.name, String(HANDOFF_PER_UID + 8)]);
  try {
    await until('the exhaust attack reported', () => /^ok \d+/m.test(held.out()), 20_000);
    tt.regex(held.out(), new RegExp(`^ok ${HANDOFF_PER_UID} enospc 8 other 0$`, 'm'), 'the attacker (nobody) reached the server: 16 accepted, then ENOSPC');
    tt.is(s.mailbox.pids().length, HANDOFF_PER_UID);
    for (let i = 0; i < 3; i++) tt.true(await legit(s), `a legitimate client (another uid) is served (${i})`);
    tt.is((await attack(['handoff', s.h.name])).trim(), 'reply ERR ENOSPC', 'the same uid still gets no 17th');
    await held.end();
    await until('the attacker\'s uffds swept once its processes exited', () => s.mailbox.pids().length === 0, 3000);
    await reach(tt, s);
    tt.is(s.logs.filter((l) => l.includes('wait already')).length, 1, 'the limit is logged once');
  } finally {
    if (held.p.exitCode === null) await held.end();
    await stop(tt, s);
  }
});

t('(g) uffds of processes that handed over and exited are closed by the timer: the server\'s fd count comes back', async (tt) => {
  tt.timeout(60_000);
  const s = await server(tt);
  try {
    await reach(tt, s);
    await until('the first handoff swept', () => s.h.size === 0, 3000);
    const base = fdCount();
    for (let i = 0; i < 20; i++) tt.is((await attack(['handoff', s.h.name])).trim(), 'reply OK');
    // No further handshake comes: only the sweep timer can close them.
    await until('every exited process\'s uffd swept', () => s.h.size === 0, 3000);
    await settle(tt, base, 'after 20 processes handed over and exited');
    tt.true(await legit(s));
  } finally { await stop(tt, s); }
});

t('malformed messages are answered with their errno, every fd they carried is closed, the server keeps serving', async (tt) => {
  tt.timeout(60_000);
  const s = await server(tt);
  const base = fdCount();
  try {
    await reach(tt, s);
    const out = await attack(['junk', s.h.name]);
    const got = Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)]));
    tt.deepEqual(got, {
      long: 'ERR EMSGSIZE', fds: 'ERR EMSGSIZE', two: 'ERR EINVAL', kind: 'ERR ENOSYS', magic: 'ERR EINVAL', empty: '(no reply)',
    }, out);
    tt.true(await legit(s), 'a legitimate client is served after');
    await until('the exited clients\' uffds swept', () => s.h.size === 0, 3000);
    await settle(tt, base, 'after the malformed messages (no fd they carried is kept)');
    tt.false(s.logs.some((l) => l.includes('/')));
  } finally { await stop(tt, s); }
});

t('a forged uffd whose close never returns (a file of a FUSE mount that holds FLUSH) is refused at once; the server keeps serving', async (tt) => {
  tt.timeout(60_000);
  if (!fs.existsSync('/dev/fuse')) { tt.log('skipped: no /dev/fuse'); tt.pass(); return; }
  const s = await server(tt);
  const base = fdCount();
  const mnt = fs.mkdtempSync(path.join(st.dir, 'fuse-'));
  fs.chmodSync(mnt, 0o755);
  // The daemon holds every FLUSH of this process: the server's close of the forged fd waits on it until it exits.
  const hold = spawn(FUSE_HOLD, [mnt, String(process.pid)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let hout = '';
  hold.stdout!.on('data', (d: Buffer) => { hout += d.toString(); });
  hold.stdin!.on('error', () => undefined);
  const holdDone = new Promise((r) => hold.on('close', r));
  try {
    await until('the FUSE mount', () => hout.includes('mounted') || hold.exitCode !== null, 5000);
    tt.regex(hout, /mounted/);
    await reach(tt, s);
    const out = await attack(['forge', s.h.name, `file:${mnt}/f`]);
    const m = /^reply (.*) ms (\d+)$/m.exec(out);
    tt.is(m?.[1], 'ERR EBADF', out);
    tt.true(Number(m?.[2]) < 1000, `answered at once (${m?.[2]} ms)`);
    await until('the server\'s close of the forged fd reached the daemon, which holds it', () => /held 1/.test(hout), 5000);
    for (let i = 0; i < 2; i++) tt.true(await legit(s), `a legitimate client is served while that close hangs (${i})`);
    await reach(tt, s);
    tt.regex(await attack(['forge', s.h.name, 'pipe']), /^reply ERR EBADF/m);
  } finally {
    hold.stdin!.end();
    await holdDone;
    fs.rmSync(mnt, { recursive: true, force: true });
  }
  await until('the exited clients\' uffds swept', () => s.h.size === 0, 3000);
  await settle(tt, base, 'once the daemon is gone (the held close returned, the queued ones ran)');
  await stop(tt, s);
});

t('the socket has an owner and a mode: 0600 shuts nobody out, 0660 with its group lets it in', async (tt) => {
  tt.timeout(30_000);
  const closed = await UffdHandoff.listen({ mailbox: new HandoffMailbox(), mode: 0o600 });
  try {
    tt.is(fs.statSync(closed.name).mode & 0o777, 0o600);
    tt.is((await attack(['handoff', closed.name])).trim(), 'reply connect EACCES');
    tt.is(closed.channel.stats.accepted, 0);
  } finally { await closed.close(); }
  const group = await UffdHandoff.listen({ mailbox: new HandoffMailbox(), mode: 0o660, gid: nobody()!.gid });
  try {
    tt.is(fs.statSync(group.name).gid, nobody()!.gid);
    tt.is((await attack(['handoff', group.name])).trim(), 'reply OK');
  } finally { await group.close(); }
});
