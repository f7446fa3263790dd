// What the browser tests share: headless Chromium (Debian's `chromium`,
// or $CHROMIUM) kept from calling home, and the artifacts directory
// screenshots go to (the first argument, default ui/e2e/artifacts).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ARTIFACTS = process.argv[2] || join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
mkdirSync(ARTIFACTS, { recursive: true });

/** Starts Chromium, or exits saying how to install it. */
export async function launchChromium() {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  return chromium.launch({
    executablePath,
    // This machine has no internet: keep Chromium from calling home.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  }).catch((e) => {
    console.error(`Cannot start Chromium at ${executablePath}: ${e.message}\nInstall it with: apt-get install chromium`);
    process.exit(2);
  });
}
