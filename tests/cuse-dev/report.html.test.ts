// `report TRACE --html OUT.html` on the demo session recorded over the real FUSE node, opened from disk in a real
// headless browser (Debian's chromium through playwright-core): one list entry per userptr BO, the split and the
// evict marked, hover and click show the creating ioctl and the memory event that caused a change, no console error,
// no network request. The screenshot is a CI artifact (dist/tests/cuse-dev/artifacts/lifetime.png);
// VIRTGPU_EMU_DOCS_PNG=1 also writes it to docs/lifetime.png, the picture in the README.
import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { pathToFileURL } from 'url';
import { probeFuse } from '../../cuse-dev/transport/auto';
import { readTrace } from '../../cuse-dev/trace/reader';
import { chromiumMissing, openBrowser } from '../helpers/browser';
import { cli, recordDemo, ROOT } from '../helpers/demo-trace';

const fuse = probeFuse();
const why = !fuse.ok ? fuse.reason : chromiumMissing();
const maybe = why ? test.skip : test;
const skipWhy = why ? ` (skipped: ${why})` : '';
export const ARTIFACTS = path.join(__dirname, 'artifacts');

maybe(`the demo session's lifetime view in chromium: a bar per BO, split and evict marked, hover and click show the ioctl and its cause${skipWhy}`, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-html-'));
  const { trace } = await recordDemo(dir);
  const out = path.join(dir, 'demo.html');
  const r = await cli(['report', trace, '--html', out]);
  t.is(r.code, 0, r.stderr);
  const creates = readTrace(trace).records.filter((x) => x.t === 'userptr' && (x as unknown as { result: unknown }).result === 0);
  const b = await openBrowser();
  try {
    const { page, errors } = b;
    await page.goto(pathToFileURL(out).href);
    await page.waitForSelector('body[data-painted="1"][data-listed="1"]');
    // No DOM types in this project's lib: the page's elements are read through their attributes.
    const entries = await page.$$eval('#bo-list li.bo', (ls) => ls.map((l) => ({ bo: l.getAttribute('data-bo'), marks: l.getAttribute('data-marks')!.split(' '), deleted: l.getAttribute('data-deleted') })));
    t.is(entries.length, creates.length, 'one entry per userptr BO created');
    t.is(entries.length, 2);
    t.true(entries[0]!.marks.includes('split') && entries[0]!.marks.includes('evict'), `BO 0 marks: ${entries[0]!.marks.join(' ')}`);
    t.true(entries[0]!.marks.includes('dedup'));
    t.deepEqual(entries.map((e) => e.deleted), ['unmap', 'unmap']);
    // Hover the first BO's bar: the tooltip names it and its creating ioctl.
    const c = await page.evaluate('window.__lifetime.barCenter(0)') as { x: number; y: number };
    const box = (await page.locator('#view').boundingBox())!;
    await page.mouse.move(box.x + c.x, box.y + c.y);
    await page.waitForSelector('#tip[data-bo="0"]');
    t.regex(await page.locator('#tip').innerText(), /BO handle 1 \(res \d+\)[\s\S]*created #\d+ DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB → 0/);
    // Click: the panel shows the creating ioctl's fields, the marks and links to the memory events that caused them.
    await page.mouse.click(box.x + c.x, box.y + c.y);
    await page.waitForSelector('#detail[data-bo="0"]');
    t.regex(await page.locator('#detail pre').first().innerText(), /"name": "DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB"[\s\S]*"bo_handle": 1/);
    t.true(await page.locator('#detail .mark.split').count() === 1 && await page.locator('#detail .mark.evict').count() === 1);
    const cause = page.locator('#detail .mark.evict a', { hasText: 'memory event' });
    await cause.click();
    t.regex(await page.locator('#detail .mark.evict pre').innerText(), /"t": "notifier"[\s\S]*"event": "CLEAR"/, 'the evict links the madvise that caused it');
    await page.mouse.move(box.x + 5, box.y + 5);
    await page.evaluate("document.querySelector('aside').scrollTop = 0");
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const png = path.join(ARTIFACTS, 'lifetime.png');
    await page.screenshot({ path: png });
    t.log(`screenshot: ${png}`);
    if (process.env.VIRTGPU_EMU_DOCS_PNG === '1') fs.copyFileSync(png, path.join(ROOT, 'docs/lifetime.png'));
    t.deepEqual(errors, []);
  } finally {
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
