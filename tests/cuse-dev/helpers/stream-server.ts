// Stream stand-in for /dev/fuse: the production serveLoop over stdin (requests) / stdout (replies), in a child process.
// argv[2] = 'fuse' | 'cuse'. Logs go to stderr as "LOG <msg>"; at the end one line "SUMMARY <json>".
import { createDevice } from '../../../core';
import { SimMachine, simProvider, type SimProcess } from '../../../core/testing';
import { Session } from '../../../cuse-dev/session/session';
import { FileTree } from '../../../cuse-dev/session/tree';
import { tgidResolver } from '../../../cuse-dev/session/tgid';
import { serveLoop } from '../../../cuse-dev/session/loop';

const kind = process.argv[2] === 'cuse' ? 'cuse' : 'fuse';
const dev = createDevice({ clients: simProvider(new SimMachine(), new Map<number, SimProcess>()) });
const session = new Session({
  kind, device: dev, tgid: tgidResolver((p) => `Tgid:\t${/\d+/.exec(p)![0]}\n`), // each simulated tid its own process
  tree: kind === 'fuse' ? new FileTree('dri/renderD128', 0o666) : undefined,
  cuse: kind === 'cuse' ? { devname: 'dri/renderD128', major: 226, minor: 128, unrestricted: true } : undefined,
  log: (m) => process.stderr.write(`LOG ${m}\n`),
});
const reason = serveLoop(0, session, { log: (m) => process.stderr.write(`LOG ${m}\n`) }, 256 * 1024, 1);
process.stderr.write(`SUMMARY ${JSON.stringify({ reason, stats: session.stats, counts: dev.counts() })}\n`);
