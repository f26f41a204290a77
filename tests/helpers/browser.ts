// Debian's chromium (scripts/setup.sh installs it) driven by playwright-core: headless, no sandbox (root in CI),
// nothing fetched from the network, a fresh profile per launch (removed at close).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const chromiumMissing = (): string => (fs.existsSync(CHROMIUM) ? '' : `${CHROMIUM} is not installed (scripts/setup.sh installs the chromium package)`);

export interface Browser { page: Page; errors: string[]; close(): Promise<void> }

export async function openBrowser(viewport = { width: 1200, height: 700 }): Promise<Browser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'virtgpu-chromium-'));
  const ctx: BrowserContext = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, viewport,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const page = ctx.pages()[0] ?? await ctx.newPage();
  const errors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') errors.push(`console ${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  // The view is self-contained: any request other than the file itself is a failure.
  page.on('request', (r) => { if (!r.url().startsWith('file://')) errors.push(`network request: ${r.url()}`); });
  return {
    page, errors,
    close: async () => { try { await ctx.close(); } finally { fs.rmSync(profile, { recursive: true, force: true }); } },
  };
}
