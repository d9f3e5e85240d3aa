// The shopper journey in headless Chromium, driven by tests/browser.rs:
// home → product → pick a variant → add to cart → cart → quantity → discount code →
// checkout form → out-of-stock answer → a checkout whose first answer is lost → confirmation.
//
// Everything the test asserts on is printed as one JSON object on stdout; progress goes to
// stderr. On failure a screenshot and the page's HTML go to JOURNEY_ARTIFACTS.
//
// Environment: JOURNEY_STORE (storefront URL, e.g. http://journey.localhost:8080/),
// JOURNEY_API (API base URL), JOURNEY_SECRET_KEY (to change stock mid-journey),
// JOURNEY_PRODUCT (product handle), JOURNEY_SKU (variant to buy), JOURNEY_CHROMIUM
// (browser binary), JOURNEY_ARTIFACTS (directory for failure evidence), JOURNEY_WIDTH
// (viewport width in px, default 1280; below 600 a phone: touch, mobile viewport).

import { chromium } from 'playwright-core';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const store = env('JOURNEY_STORE');
const api = env('JOURNEY_API').replace(/\/+$/, '');
const secret = env('JOURNEY_SECRET_KEY');
const handle = env('JOURNEY_PRODUCT');
const sku = env('JOURNEY_SKU');
const executablePath = process.env.JOURNEY_CHROMIUM || '/usr/bin/chromium';
const artifacts = process.env.JOURNEY_ARTIFACTS || '';
const width = Number(process.env.JOURNEY_WIDTH || 1280);
const TIMEOUT = 20000;

const log = (...args) => console.error('[journey]', ...args);
const result = { steps: [], console_errors: [], failed_requests: [], checkout_requests: [], layout_shift: {} };

async function merchant(method, path, body) {
  const response = await fetch(`${api}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json().catch(() => null);
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

// Layout shifts not caused by input, summed per page (the CLS of each page view).
const CLS_SCRIPT = `
  window.__shifts = 0;
  try {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) if (!entry.hadRecentInput) window.__shifts += entry.value;
    }).observe({ type: 'layout-shift', buffered: true });
  } catch (e) { window.__shifts = -1; }
`;

async function shifts(page, name) {
  await page.waitForTimeout(300); // let the last frame settle
  const value = await page.evaluate(() => window.__shifts);
  result.layout_shift[name] = Math.max(result.layout_shift[name] || 0, value);
}

const step = (name) => {
  log(name);
  result.steps.push(name);
};

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-quic', '--disable-dev-shm-usage',
  ],
});
let page;
try {
  const phone = width < 600;
  const context = await browser.newContext({ viewport: { width, height: 900 }, locale: 'en-IE', isMobile: phone, hasTouch: phone });
  context.setDefaultTimeout(TIMEOUT);
  await context.addInitScript(CLS_SCRIPT);
  page = await context.newPage();
  page.on('console', (msg) => {
    // Chromium logs every non-2xx answer as "Failed to load resource"; the journey meets
    // some on purpose (unknown code, out of stock, the dropped answer). Script errors count.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) {
      result.console_errors.push(msg.text());
    }
  });
  page.on('pageerror', (err) => result.console_errors.push(String(err)));
  page.on('requestfailed', (req) => result.failed_requests.push(`${req.method()} ${req.url()}: ${req.failure()?.errorText}`));
  page.on('request', (req) => {
    if (req.method() === 'POST' && /\/checkout$/.test(new URL(req.url()).pathname)) {
      result.checkout_requests.push(req.headers()['idempotency-key'] || '');
    }
  });

  step('home');
  const home = await page.goto(store, { waitUntil: 'load' });
  result.home_status = home.status();
  const link = page.locator(`a[href*="/products/${handle}/"]`).first();
  await link.waitFor();
  await shifts(page, 'home');

  step('product');
  await Promise.all([page.waitForURL(`**/products/${handle}/**`), link.click()]);
  const variants = JSON.parse(await page.locator('script[data-product-json]').textContent());
  const variant = variants.find((v) => v.sku === sku);
  if (!variant) throw new Error(`variant ${sku} is not in the product JSON`);
  result.variant_id = variant.id;
  result.unit_price = variant.price.amount;

  step('pick a variant');
  const selects = page.locator('select[data-option-index]');
  const count = await selects.count();
  if (count > 0) {
    for (let i = 0; i < count; i += 1) {
      await page.locator(`select[data-option-index="${i}"]`).selectOption(variant.options[i]);
    }
  } else if (await page.locator('select[data-variant-select]').count()) {
    await page.locator('select[data-variant-select]').selectOption(sku);
  }
  await page.waitForFunction((s) => new URL(location.href).searchParams.get('variant') === s || !document.querySelector('select[data-option-index]'), sku);
  result.price_shown = (await page.locator('[data-price-amount]').textContent()).trim();

  step('add to cart');
  await page.locator('button[data-add-to-cart]').click();
  await page.locator('[data-cart-message] a').waitFor();
  result.added_message = (await page.locator('[data-cart-message]').textContent()).trim();
  await page.waitForFunction(() => document.querySelector('[data-cart-count]').textContent.trim() === '1');
  result.token_stored = await page.evaluate(() => Object.keys(localStorage).some((k) => k.startsWith('aurelio.cart-token.') && localStorage.getItem(k)));
  await shifts(page, 'product');

  step('cart');
  await Promise.all([page.waitForURL('**/cart/'), page.locator('a.cart-link').click()]);
  await page.locator('.cart[data-state="cart"]').waitFor();
  const row = page.locator(`tr.cart-line[data-variant-id="${variant.id}"]`);
  await row.waitFor();
  result.cart_line_title = (await row.locator('.cart-line-title').textContent()).trim();

  step('change the quantity to 2');
  await row.locator('input[data-quantity]').fill('2');
  await row.locator('input[data-quantity]').dispatchEvent('change');
  await page.waitForFunction(() => document.querySelector('[data-cart-count]').textContent.trim() === '2');
  result.line_total_text = (await row.locator('[data-line-total]').textContent()).trim();

  step('an unknown discount code');
  await page.locator('#discount-code').fill('NOT-A-CODE');
  await page.locator('[data-discount-form] button[type="submit"]').click();
  await page.locator('[data-discount-message][data-reason]').waitFor();
  result.unknown_code_reason = await page.locator('[data-discount-message]').getAttribute('data-reason');
  result.unknown_code_message = (await page.locator('[data-discount-message]').textContent()).trim();

  step('apply WELCOME10');
  await page.locator('#discount-code').fill('welcome10');
  await page.locator('[data-discount-form] button[type="submit"]').click();
  await page.locator('li.discount-code[data-code="WELCOME10"][data-applied="true"]').waitFor();
  result.discount_message = (await page.locator('[data-discount-message]').textContent()).trim();
  result.discount_shown = (await page.locator('[data-cart-discount]').textContent()).trim();

  step('checkout form');
  await page.locator('#checkout-email').fill('ada@example.com');
  await page.locator('#checkout-name').fill('Ada Lovelace');
  await page.locator('#checkout-line1').fill('1 Quay Street');
  await page.locator('#checkout-city').fill('Galway');
  await page.locator('#checkout-postal').fill('H91 X2YZ');
  result.country_default = await page.locator('#checkout-country').inputValue();
  await page.locator('#checkout-country').selectOption('IE');
  const rate = page.locator('input[name="shipping_rate"]').first();
  await rate.waitFor();
  await rate.check();
  await page.waitForFunction(() => /\d/.test(document.querySelector('[data-cart-shipping]').textContent));
  await page.waitForTimeout(300); // the rate change round trip
  step('a region with its own tax rate, then cleared');
  const tax = async () => (await page.locator('[data-cart-tax]').textContent()).trim();
  const taxBecomes = (test, value) => page.waitForFunction(
    ([t, v]) => { const now = document.querySelector('[data-cart-tax]').textContent.trim(); return t === 'is' ? now === v : now !== v; },
    [test, value]);
  result.tax_national = await tax();
  await page.locator('#checkout-region').fill('Cork');
  await page.locator('#checkout-region').dispatchEvent('change');
  await taxBecomes('not', result.tax_national);
  result.tax_regional = await tax();
  await page.locator('#checkout-region').fill('');
  await page.locator('#checkout-region').dispatchEvent('change');
  await taxBecomes('is', result.tax_national);
  result.tax_region_cleared = await tax();
  result.shipping_shown = (await page.locator('[data-cart-shipping]').textContent()).trim();
  result.tax_label = (await page.locator('[data-cart-tax]').locator('xpath=..').locator('dt').textContent()).trim();
  result.total_shown = (await page.locator('[data-cart-total]').textContent()).trim();
  result.breakdown = await page.locator('[data-cart-breakdown] li').allTextContents();
  await shifts(page, 'cart');

  step('stock runs out before the order: the answer says what changed');
  await merchant('PATCH', `/variants/${variant.id}`, { inventory: 1 });
  await page.locator('button[data-place-order]').click();
  await page.locator('[data-checkout-message][data-error="out_of_stock"] [data-changes] li').first().waitFor();
  result.out_of_stock_message = (await page.locator('[data-checkout-message]').textContent()).trim();
  result.out_of_stock_note = (await row.locator('[data-line-note]').textContent()).trim();
  await merchant('PATCH', `/variants/${variant.id}`, { inventory: 25 });
  await page.locator('button[data-place-order]:not([disabled])').waitFor();

  step('place the order; its first answer is lost on the way back');
  let dropped = 0;
  await page.route('**/checkout', async (route) => {
    if (dropped === 0 && route.request().method() === 'POST') {
      dropped += 1;
      await route.fetch(); // the server places the order ...
      await route.abort('connectionreset'); // ... and the browser never hears of it
      return;
    }
    await route.continue();
  });
  await page.locator('button[data-place-order]').click();
  await page.locator('.cart[data-state="order"]').waitFor();
  result.dropped_answers = dropped;

  step('confirmation');
  result.confirmation_url = page.url();
  result.order_number = (await page.locator('[data-order-number]').textContent()).trim();
  result.order_total_shown = (await page.locator('[data-order-total]').textContent()).trim();
  result.order_lines = await page.locator('[data-order-lines] tbody tr').evaluateAll((rows) =>
    rows.map((r) => Array.from(r.cells).map((c) => c.textContent.trim())));
  result.heading = (await page.locator('[data-cart-heading]').textContent()).trim();
  result.cart_count_after = (await page.locator('[data-cart-count]').textContent()).trim();

  step('the confirmation survives a reload');
  await page.unroute('**/checkout');
  await page.reload({ waitUntil: 'load' });
  await page.locator('.cart[data-state="order"]').waitFor();
  result.order_number_after_reload = (await page.locator('[data-order-number]').textContent()).trim();
  await shifts(page, 'confirmation');

  result.ok = true;
} catch (err) {
  result.ok = false;
  result.error = String(err && err.stack ? err.stack : err);
  if (artifacts && page) {
    try {
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: join(artifacts, 'journey-failure.png'), fullPage: true });
      writeFileSync(join(artifacts, 'journey-failure.html'), await page.content());
      result.artifacts = artifacts;
    } catch (e) {
      log('could not save the failure evidence:', e);
    }
  }
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(result.ok ? 0 : 1);
