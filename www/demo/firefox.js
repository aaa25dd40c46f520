// Debian's Firefox ESR driven by puppeteer-core over WebDriver BiDi (no browser download;
// Playwright cannot drive a stock Firefox).
import puppeteer from 'puppeteer-core';

/** `prefs` adds Firefox preferences (e.g. a storage quota) for one launch. */
export function launchFirefox(prefs = {}) {
  return puppeteer.launch({
    browser: 'firefox',
    executablePath: process.env.FIREFOX ?? '/usr/bin/firefox-esr',
    headless: true,
    // This machine has no internet: keep Firefox from reaching out at start.
    extraPrefsFirefox: {
      'app.update.enabled': false,
      'browser.safebrowsing.malware.enabled': false,
      'browser.safebrowsing.phishing.enabled': false,
      'datareporting.policy.dataSubmissionEnabled': false,
      'network.captive-portal-service.enabled': false,
      'network.connectivity-service.enabled': false,
      'extensions.update.enabled': false,
      ...prefs,
    },
  });
}
