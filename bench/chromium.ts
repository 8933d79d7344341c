// Headless Chromium for the dashboard bench and the dashboard's end-to-end test (which imports it
// from here, as other tests import bench/lifecycle.ts): Debian's package driven by playwright-core.
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.AIECS_CHROMIUM ?? '/usr/bin/chromium';

/**
 * No sandbox (containers run it as root), no GPU, and none of the background traffic (updates,
 * sync, QUIC probes) that would cost CPU beside what is measured or time out offline.
 */
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Throws, saying how to get one, when there is no Chromium: call it before any costly setup. */
export function requireChromium(): void {
  if (!existsSync(CHROMIUM))
    throw new Error(`no chromium at ${CHROMIUM}: apt-get install chromium (or set AIECS_CHROMIUM)`);
}

export async function launchChromium(): Promise<Browser> {
  requireChromium();
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
}
