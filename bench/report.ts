// `report --html` at scale, in the real browser: a synthetic trace of 100k records (tests/helpers/synthetic-trace.ts)
// rendered to the lifetime view, opened from disk in headless chromium; prints the time to write the file, the
// first paint (navigation start → the first frame after the canvas is drawn) and the hover feedback (mouse move →
// the frame after the tooltip changed) over bars across the picture. Printed, not asserted: the README's targets are
// first paint ≤ 2 s and hover ≤ 100 ms at 100k events.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { pathToFileURL } from 'url';
import { performance } from 'perf_hooks';
import { toHtml } from '../cuse-dev/trace/html';
import { syntheticTrace } from '../tests/helpers/synthetic-trace';
import { chromiumMissing, openBrowser } from '../tests/helpers/browser';
import { fmt, summarize, table } from './lib/measure';

export async function main(argv: string[] = process.argv.slice(2)): Promise<string> {
  const events = Number(argv.find((a) => /^\d+$/.test(a)) ?? 100_000);
  const missing = chromiumMissing();
  if (missing) return `(skipped: ${missing})`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-bench-report-'));
  const { trace, counts } = syntheticTrace(events);
  let t0 = performance.now();
  const html = toHtml(trace, `synthetic ${events}`);
  const out = path.join(dir, 'lifetime.html');
  fs.writeFileSync(out, html);
  const writeMs = performance.now() - t0;
  const b = await openBrowser({ width: 1400, height: 900 });
  try {
    const { page } = b;
    t0 = performance.now();
    await page.goto(pathToFileURL(out).href);
    await page.waitForSelector('body[data-painted="1"]', { timeout: 60_000 });
    const firstPaint = await page.evaluate('window.__firstPaintMs') as number;
    const loadMs = performance.now() - t0;
    await page.waitForSelector('body[data-listed="1"]', { timeout: 120_000 });
    const listedMs = performance.now() - t0;
    const box = (await page.locator('#view').boundingBox())!;
    const hover: number[] = [];
    for (let k = 0; k < 60; k++) {
      const i = Math.floor((k * 7919) % counts.bos);
      const c = await page.evaluate(`window.__lifetime.barCenter(${i})`) as { x: number; y: number };
      if (c.x < 0 || c.y < 0 || c.x > box.width || c.y > box.height) continue;
      await page.evaluate('window.__hoverMs = -1');
      await page.mouse.move(box.x + c.x, box.y + c.y);
      await page.waitForFunction('window.__hoverMs >= 0');
      hover.push(await page.evaluate('window.__hoverMs') as number);
    }
    const h = summarize('hover', 'ms', hover);
    return [
      table(`report --html, ${events} records (${counts.bos} userptr BOs, ${fmt(html.length / 1e6)} MB file), headless chromium`, [
        { name: 'toHtml + write', value: writeMs, unit: 'ms' },
        { name: 'first paint (navigation start → first frame)', value: firstPaint, unit: 'ms', note: 'target ≤ 2000 ms' },
        { name: 'goto → painted, seen from node', value: loadMs, unit: 'ms' },
        { name: 'BO list complete', value: listedMs, unit: 'ms', note: 'filled after the first paint' },
        { name: `hover feedback, median of ${h.n}`, value: h.median, unit: 'ms', note: `p99 ${fmt(h.p99)} ms; target ≤ 100 ms` },
      ]),
      '', `command: node dist/bench/report.js ${events}`,
    ].join('\n');
  } finally {
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().then((s) => console.log(s), (e: Error) => { console.error(e.stack ?? e.message); process.exitCode = 1; });
}
