// Every page kind of a storefront at phone and desktop width, in headless Chromium, driven
// by tests/browser.rs: no horizontal overflow, the main product image inside the viewport
// and loaded, the add-to-cart button visible without scrolling sideways, tap targets of at
// least 44 × 44 px. The cart is also seen with a line in it (its checkout form).
//
// Everything the test asserts on is printed as one JSON object on stdout: per page and
// width, the problems found. Screenshots of pages with problems (both widths) go to
// LAYOUT_ARTIFACTS (all pages with LAYOUT_SCREENSHOTS=all, to look at them).
//
// Environment: LAYOUT_PAGES (JSON: [{"name", "url", "kind"}], kind `product` gets the
// product checks and adds the product to the cart), LAYOUT_CHROMIUM, LAYOUT_ARTIFACTS.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const pages = JSON.parse(process.env.LAYOUT_PAGES || '[]');
const executablePath = process.env.LAYOUT_CHROMIUM || '/usr/bin/chromium';
const artifacts = process.env.LAYOUT_ARTIFACTS || '';
const shootAll = process.env.LAYOUT_SCREENSHOTS === 'all';
const WIDTHS = [390, 1280];
const MIN_TARGET = 44;

const log = (...args) => console.error('[layout]', ...args);

// Runs in the page: the problems of its layout.
function inspect({ kind, minTarget }) {
  const problems = [];
  const vw = window.innerWidth;
  const doc = document.documentElement;
  if (doc.scrollWidth > vw + 1) {
    // Name the widest element that sticks out, so the report says where to look.
    let culprit = '';
    let right = vw;
    for (const el of document.body.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.right > right + 1 && r.width > 0) {
        right = r.right;
        culprit = el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ? `.${el.className.trim().split(/\s+/).join('.')}` : '');
      }
    }
    problems.push(`horizontal overflow: the page is ${doc.scrollWidth} px wide in a ${vw} px viewport (${culprit})`);
  }
  const describe = (el) => {
    const text = (el.getAttribute('aria-label') || el.textContent || el.getAttribute('name') || el.id || '').trim().replace(/\s+/g, ' ').slice(0, 40);
    return `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''} "${text}"`;
  };
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && style.visibility !== 'hidden' && style.display !== 'none';
  };
  if (kind === 'product') {
    const img = document.querySelector('.product-gallery img');
    if (!img) {
      problems.push('no product image');
    } else {
      const r = img.getBoundingClientRect();
      if (r.left < -1 || r.right > vw + 1 || r.width < vw * 0.5 * (vw < 600 ? 1 : 0.5)) {
        problems.push(`the main image is not in view: x ${Math.round(r.left)}..${Math.round(r.right)} of ${vw}`);
      }
      if (!img.complete || img.naturalWidth === 0) problems.push('the main image has not loaded');
    }
    const add = document.querySelector('button[data-add-to-cart]');
    if (!add || !visible(add)) {
      problems.push('no visible add-to-cart button');
    } else {
      const r = add.getBoundingClientRect();
      if (r.left < -1 || r.right > vw + 1) problems.push(`add to cart is outside the viewport: x ${Math.round(r.left)}..${Math.round(r.right)}`);
    }
  }
  // Tap targets: controls and links that are not part of running text (WCAG 2.5.5 lets
  // inline links in a sentence be smaller). An input inside a label counts as its label.
  const targets = document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary');
  for (const el of targets) {
    if (!visible(el) || el.closest('[hidden], [aria-hidden="true"]')) continue;
    if (el.tagName === 'A' && el.closest('p, .prose, .rte, .page-content, .product-description')) continue;
    const target = el.closest('label') || el;
    const r = target.getBoundingClientRect();
    if (r.width + 0.5 < minTarget || r.height + 0.5 < minTarget) {
      problems.push(`tap target ${Math.round(r.width)}×${Math.round(r.height)} px: ${describe(el)}`);
    }
  }
  return problems;
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-quic', '--disable-dev-shm-usage',
  ],
});
const result = { ok: true, checked: [], problems: {}, screenshots: [], console_errors: [] };
try {
  for (const width of WIDTHS) {
    const context = await browser.newContext({ viewport: { width, height: 900 }, locale: 'en-IE', isMobile: width < 600, hasTouch: width < 600 });
    context.setDefaultTimeout(20000);
    const page = await context.newPage();
    page.on('pageerror', (err) => result.console_errors.push(`${width}px: ${err}`));
    const seen = async (name, kind) => {
      // Images below the fold load lazily: scroll through, then back to the top.
      await page.evaluate(async () => {
        for (let y = 0; y < document.body.scrollHeight; y += window.innerHeight) {
          window.scrollTo(0, y);
          await new Promise((r) => setTimeout(r, 30));
        }
        window.scrollTo(0, 0);
      });
      if (kind === 'product') {
        await page.waitForFunction(() => { const i = document.querySelector('.product-gallery img'); return !i || (i.complete && i.naturalWidth > 0); }).catch(() => {});
      }
      const problems = await page.evaluate(inspect, { kind, minTarget: MIN_TARGET });
      const key = `${name} @ ${width}px`;
      result.checked.push(key);
      if (problems.length) result.problems[key] = problems;
      if (problems.length || shootAll) {
        if (artifacts) {
          mkdirSync(artifacts, { recursive: true });
          const file = join(artifacts, `${name}-${width}.png`);
          await page.screenshot({ path: file, fullPage: true });
          result.screenshots.push(file);
        }
      }
    };
    let added = false;
    for (const p of pages) {
      log(`${p.name} at ${width}px`);
      await page.goto(p.url, { waitUntil: 'load' });
      await seen(p.name, p.kind);
      if (p.kind === 'product' && !added) {
        await page.locator('button[data-add-to-cart]').click();
        await page.waitForFunction(() => document.querySelector('[data-cart-count]')?.textContent.trim() === '1');
        added = true;
      }
    }
    if (added) {
      const cart = pages.find((p) => p.kind === 'cart');
      if (cart) {
        await page.goto(cart.url, { waitUntil: 'load' });
        await page.locator('.cart[data-state="cart"]').waitFor();
        await seen('checkout', 'checkout');
      }
    }
    await context.close();
  }
} catch (err) {
  result.ok = false;
  result.error = String(err && err.stack ? err.stack : err);
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(result.ok ? 0 : 1);
