/* Aurelio storefront script: variant picker, cart (on the shop's API when the page names
   one, else in localStorage), checkout and order confirmation, and product search.
   Dependency-free ES2017, no build step; every feature is skipped when its markup is
   missing. */
(function () {
  'use strict';

  var MAX_QUANTITY = 99;
  var config = null; // read from <body data-*> at init, when the body exists
  var money = null;
  var CART_KEY = 'aurelio.cart./';

  function readConfig() {
    var data = (document.body && document.body.dataset) || {};
    return {
      currency: (data.currency || 'USD').trim().toUpperCase(),
      locale: data.locale || document.documentElement.lang || 'en',
      api: data.api || '',
      key: data.key || '',
      root: withSlash(data.root || '/')
    };
  }

  function withSlash(path) {
    return path.charAt(path.length - 1) === '/' ? path : path + '/';
  }

  function $(selector, scope) {
    return (scope || document).querySelector(selector);
  }

  function $$(selector, scope) {
    return Array.prototype.slice.call((scope || document).querySelectorAll(selector));
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) return;
      if (name === 'text') node.textContent = String(value);
      else if (name === 'className') node.className = value;
      else node.setAttribute(name, value === true ? '' : String(value));
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) {
        node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
      }
    });
    return node;
  }

  function clampQuantity(value) {
    var n = parseInt(value, 10);
    if (!isFinite(n) || n < 1) return 1;
    return n > MAX_QUANTITY ? MAX_QUANTITY : n;
  }

  function isSafeUrl(url) {
    return typeof url === 'string' && (/^\/(?!\/)/.test(url) || /^https?:\/\//i.test(url));
  }

  function searchParams() {
    try {
      return new URLSearchParams(window.location.search);
    } catch (e) {
      return { get: function () { return null; } };
    }
  }

  function replaceParam(name, value) {
    try {
      var url = new URL(window.location.href);
      if (value) url.searchParams.set(name, value);
      else url.searchParams.delete(name);
      window.history.replaceState(window.history.state, '', url.pathname + url.search + url.hash);
    } catch (e) { /* history unavailable (sandboxed frame, file://) */ }
  }

  /* Money: integer minor units in, localized string out. Never sums floats. */

  function makeMoney() {
    var exponent = 2;
    var formatter = null;
    try {
      exponent = new Intl.NumberFormat('en', { style: 'currency', currency: config.currency })
        .resolvedOptions().maximumFractionDigits;
    } catch (e) { /* unknown currency: keep 2 */ }
    try {
      formatter = new Intl.NumberFormat(config.locale, {
        style: 'currency',
        currency: config.currency,
        minimumFractionDigits: exponent,
        maximumFractionDigits: exponent
      });
    } catch (e) {
      try {
        formatter = new Intl.NumberFormat('en', { style: 'currency', currency: config.currency });
      } catch (e2) { formatter = null; }
    }

    // Exact decimal string of an integer amount ("1999" -> "19.99"), built from digits.
    function decimal(minor) {
      var negative = minor < 0;
      var digits = String(Math.abs(minor));
      if (exponent > 0) {
        while (digits.length <= exponent) digits = '0' + digits;
        digits = digits.slice(0, -exponent) + '.' + digits.slice(-exponent);
      }
      return (negative ? '-' : '') + digits;
    }

    return {
      format: function (minor) {
        var amount = Math.round(Number(minor) || 0);
        var text = decimal(amount);
        if (!formatter) return text + '\u00a0' + config.currency;
        // Modern engines format numeric strings exactly; older ones parse them as Number,
        // which for a short decimal is the nearest double and rounds back to the same digits.
        return formatter.format(text);
      }
    };
  }

  /* Storage that never throws: falls back to memory when localStorage is blocked. */

  var storage = (function () {
    var memory = {};
    var local = null;
    try {
      local = window.localStorage;
      var probe = '__aurelio__';
      local.setItem(probe, probe);
      local.removeItem(probe);
    } catch (e) {
      local = null;
    }
    return {
      get: function (key) {
        try {
          if (local) return local.getItem(key);
        } catch (e) { /* fall through */ }
        return Object.prototype.hasOwnProperty.call(memory, key) ? memory[key] : null;
      },
      remove: function (key) {
        delete memory[key];
        try {
          if (local) local.removeItem(key);
        } catch (e) { /* ignore */ }
      },
      set: function (key, value) {
        memory[key] = value;
        try {
          if (local) local.setItem(key, value);
        } catch (e) {
          local = null; // quota or privacy mode: keep using the memory copy from now on
        }
      }
    };
  })();

  /* Cart: one model for both homes of the cart. With an API URL and a publishable key on
     the page the cart lives on the server (totals, discounts, shipping and tax computed
     there); without them (the static demo build) it lives in localStorage and never
     leaves the device. Renderers only ever see the model:
       { mode, lines: [{ id, title, variantTitle, url, quantity, unitPrice, total,
         available }], count, totals, codes, shippingOptions, shippingRate, country,
         region, email, breakdown } */

  var TOKEN_KEY = 'aurelio.cart-token./';
  var COUNT_KEY = 'aurelio.cart-count./';
  var REQUEST_TIMEOUT_MS = 15000;

  function usesApi() {
    return Boolean(config && config.key && /^https?:\/\//i.test(config.api) && typeof fetch === 'function');
  }

  /* Local cart (no API configured). */

  function sanitizeLine(line) {
    if (!line || typeof line !== 'object' || typeof line.sku !== 'string' || !line.sku) return null;
    var price = Number(line.price);
    return {
      sku: line.sku,
      title: typeof line.title === 'string' ? line.title : line.sku,
      variant_title: typeof line.variant_title === 'string' ? line.variant_title : '',
      price: isFinite(price) ? Math.round(price) : 0,
      price_formatted: typeof line.price_formatted === 'string' ? line.price_formatted : '',
      url: isSafeUrl(line.url) ? line.url : '',
      quantity: clampQuantity(line.quantity)
    };
  }

  function readCart() {
    var cart = { lines: [] };
    try {
      var parsed = JSON.parse(storage.get(CART_KEY) || 'null');
      if (parsed && Array.isArray(parsed.lines)) {
        cart.lines = parsed.lines.map(sanitizeLine).filter(Boolean);
      }
    } catch (e) { /* corrupt data: start empty */ }
    return cart;
  }

  function writeCart(cart) {
    storage.set(CART_KEY, JSON.stringify({ lines: cart.lines }));
    cartChanged(localModel(cart));
  }

  function cartQuantity(cart) {
    return cart.lines.reduce(function (sum, line) { return sum + line.quantity; }, 0);
  }

  function localModel(cart) {
    var lines = cart.lines.map(function (line) {
      return {
        id: line.sku,
        title: line.title,
        variantTitle: line.variant_title,
        url: line.url,
        quantity: line.quantity,
        unitPrice: line.price,
        total: line.price * line.quantity, // integer minor units: exact
        available: null
      };
    });
    return {
      mode: 'local',
      lines: lines,
      count: cartQuantity(cart),
      totals: { subtotal: lines.reduce(function (sum, line) { return sum + line.total; }, 0) },
      codes: [],
      shippingOptions: [],
      breakdown: []
    };
  }

  function addToLocalCart(item, quantity) {
    var cart = readCart();
    var existing = null;
    cart.lines.forEach(function (line) {
      if (line.sku === item.sku) existing = line;
    });
    var requested = clampQuantity(quantity);
    var capped = false;
    if (existing) {
      capped = existing.quantity + requested > MAX_QUANTITY;
      existing.quantity = clampQuantity(existing.quantity + requested);
      existing.title = item.title;
      existing.variant_title = item.variant_title;
      existing.price = item.price;
      existing.price_formatted = item.price_formatted;
      existing.url = item.url;
    } else {
      var line = sanitizeLine(item);
      if (!line) return { cart: cart, capped: false };
      line.quantity = requested;
      cart.lines.push(line);
    }
    writeCart(cart);
    return { cart: cart, capped: capped };
  }

  function setLocalQuantity(sku, value) {
    var cart = readCart();
    var quantity = parseInt(value, 10);
    if (quantity === 0) {
      cart.lines = cart.lines.filter(function (line) { return line.sku !== sku; });
    } else {
      cart.lines.forEach(function (line) {
        if (line.sku === sku) line.quantity = clampQuantity(value);
      });
    }
    writeCart(cart);
    return Promise.resolve(localModel(cart));
  }

  var localBackend = {
    load: function () { return Promise.resolve(localModel(readCart())); },
    setQuantity: setLocalQuantity,
    remove: function (sku) { return setLocalQuantity(sku, 0); }
  };

  /* The cart API. Every answer is `{"cart": ...}` or `{"error": {code, message, field,
     details}}`; failures become Error objects with `status` (0: no answer), `code`,
     `field` and `details`. */

  function failure(status, error) {
    error = error || {};
    var e = new Error(error.message || (status ? 'HTTP ' + status : 'network error'));
    e.status = status;
    e.code = error.code || (status ? 'http_' + status : 'network');
    e.field = error.field || null;
    e.details = Array.isArray(error.details) ? error.details : [];
    return e;
  }

  function apiUrl(path) {
    return config.api.replace(/\/+$/, '').replace(/\/api\/v1$/, '') + '/api/v1' + path;
  }

  function request(method, path, body, headers) {
    var init = {
      method: method,
      headers: { Accept: 'application/json', Authorization: 'Bearer ' + config.key },
      credentials: 'omit',
      cache: 'no-store'
    };
    Object.keys(headers || {}).forEach(function (name) { init.headers[name] = headers[name]; });
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
    }
    var timer = 0;
    if (typeof AbortController === 'function') {
      var controller = new AbortController();
      init.signal = controller.signal;
      timer = setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS);
    }
    return fetch(apiUrl(path), init)
      .then(function (response) {
        return response.text().then(function (text) {
          var json = null;
          try {
            json = text ? JSON.parse(text) : null;
          } catch (e) { json = null; }
          if (response.ok && json) return json;
          throw failure(response.status, json && json.error);
        });
      })
      .then(function (json) {
        clearTimeout(timer);
        return json;
      }, function (e) {
        clearTimeout(timer);
        // fetch rejects (offline, refused, CORS, timeout) or the body broke off: no answer.
        throw e && e.code ? e : failure(0, null);
      });
  }

  function delay(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  // Unguessable and unique per checkout attempt.
  function newIdempotencyKey() {
    try {
      if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
      var bytes = new Uint8Array(16);
      window.crypto.getRandomValues(bytes);
      return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join('');
    } catch (e) {
      return String(Date.now()) + '-' + String(Math.random()).slice(2);
    }
  }

  function storedToken() {
    var token = storage.get(TOKEN_KEY) || '';
    return /^[A-Za-z0-9_-]{8,200}$/.test(token) ? token : '';
  }

  function productUrl(handle) {
    return handle ? config.root + 'products/' + encodeURIComponent(handle) + '/' : '';
  }

  function number(value, fallback) {
    return typeof value === 'number' && isFinite(value) ? value : fallback;
  }

  function serverModel(cart) {
    var lines = (Array.isArray(cart.lines) ? cart.lines : []).map(function (line) {
      var amounts = line.amounts || {};
      var quantity = number(line.quantity, 0);
      var unit = number(line.unit_price, 0);
      return {
        id: String(line.variant_id),
        title: String(line.title || line.sku || ''),
        variantTitle: String(line.variant_title || ''),
        url: productUrl(line.product_handle),
        quantity: quantity,
        unitPrice: unit,
        total: number(amounts.subtotal, unit * quantity),
        available: number(line.available, null)
      };
    });
    return {
      mode: 'api',
      token: String(cart.token),
      status: cart.status || 'open',
      lines: lines,
      count: lines.reduce(function (sum, line) { return sum + line.quantity; }, 0),
      totals: cart.totals || null,
      codes: Array.isArray(cart.discount_codes) ? cart.discount_codes : [],
      shippingOptions: Array.isArray(cart.shipping_options) ? cart.shipping_options : [],
      shippingRate: cart.shipping_rate || '',
      country: cart.country || '',
      region: cart.region || '',
      email: cart.email || '',
      breakdown: Array.isArray(cart.breakdown) ? cart.breakdown : []
    };
  }

  function forgetCart() {
    storage.remove(TOKEN_KEY);
    storage.set(COUNT_KEY, '0');
    updateCartCount(0);
  }

  // Takes a `{"cart": ...}` answer: remembers the token and count, tells the page.
  function acceptCart(json) {
    var cart = json && json.cart;
    if (!cart || typeof cart.token !== 'string') throw failure(0, { code: 'bad_response', message: 'unexpected answer' });
    var model = serverModel(cart);
    if (model.status !== 'open') {
      forgetCart();
      return model;
    }
    storage.set(TOKEN_KEY, model.token);
    storage.set(COUNT_KEY, String(model.count));
    cartChanged(model);
    return model;
  }

  // Cart changes run one after another, so answers apply in the order they were asked.
  var queue = Promise.resolve();
  function enqueue(task) {
    var run = queue.then(task, task);
    queue = run.catch(function () {});
    return run;
  }

  function withToken(task) {
    return enqueue(function () {
      var token = storedToken();
      if (!token) return Promise.reject(failure(404, { code: 'not_found', message: 'your cart has expired' }));
      return task(token);
    });
  }

  var serverBackend = {
    load: function () {
      return enqueue(function () {
        var token = storedToken();
        if (!token) return null;
        return request('GET', '/carts/' + token).then(acceptCart, function (e) {
          if (e.status === 404) {
            forgetCart();
            return null;
          }
          throw e;
        });
      });
    },
    add: function (variantId, quantity) {
      return enqueue(function () {
        var line = { variant_id: variantId, quantity: quantity };
        var create = function () { return request('POST', '/carts', { lines: [line] }).then(acceptCart); };
        var token = storedToken();
        if (!token) return create();
        return request('POST', '/carts/' + token + '/lines', line).then(acceptCart, function (e) {
          // Checked out in another tab, or expired: start a new cart.
          if (e.status === 404 || e.code === 'cart_completed') {
            forgetCart();
            return create();
          }
          throw e;
        });
      });
    },
    setQuantity: function (variantId, value) {
      var quantity = Math.max(0, parseInt(value, 10) || 0);
      return withToken(function (token) {
        var path = '/carts/' + token + '/lines/' + encodeURIComponent(variantId);
        return (quantity === 0 ? request('DELETE', path) : request('PATCH', path, { quantity: quantity })).then(acceptCart);
      });
    },
    remove: function (variantId) { return serverBackend.setQuantity(variantId, 0); },
    applyCode: function (code) {
      return withToken(function (token) {
        return request('POST', '/carts/' + token + '/discounts', { code: code }).then(acceptCart);
      });
    },
    removeCode: function (code) {
      return withToken(function (token) {
        return request('DELETE', '/carts/' + token + '/discounts/' + encodeURIComponent(code)).then(acceptCart);
      });
    },
    update: function (fields) {
      return withToken(function (token) {
        return request('PATCH', '/carts/' + token, fields).then(acceptCart);
      });
    }
  };

  /* Failures in words for shoppers. */

  var REASON_TEXT = {
    unknown_code: 'We don\u2019t recognise that code. Please check the spelling.',
    not_started: 'That code isn\u2019t active yet.',
    expired: 'That code has expired.',
    minimum_not_met: 'Your cart is below the minimum amount for that code.',
    usage_limit_reached: 'That code has been fully redeemed.',
    already_used_by_customer: 'That code has already been used with this email address.',
    no_eligible_products: 'That code doesn\u2019t apply to anything in your cart.',
    not_combinable: 'That code can\u2019t be combined with the other code in your cart.'
  };

  function sentence(text) {
    var s = String(text || '').replace(/`/g, '').trim();
    if (!s) return '';
    s = s.charAt(0).toUpperCase() + s.slice(1);
    return /[.!?]$/.test(s) ? s : s + '.';
  }

  function reasonText(reason, fallback) {
    return REASON_TEXT[reason] || sentence(fallback) || 'That code doesn\u2019t apply to this cart.';
  }

  function politeError(e) {
    if (!e || e.code === 'network' || e.code === 'bad_response') {
      return 'We couldn\u2019t reach the shop. Please check your connection and try again.';
    }
    if (e.status === 429) return 'The shop is very busy right now. Please try again in a moment.';
    if (e.status >= 500) return 'Something went wrong on our side. Please try again in a moment.';
    if (e.code === 'discount_not_applicable') {
      var detail = e.details[0] || {};
      return reasonText(detail.code, e.message);
    }
    if (e.code === 'out_of_stock') {
      var left = null;
      e.details.forEach(function (d) {
        if (d.code === 'available') left = parseInt(d.message, 10);
      });
      if (left === 0) return 'Sorry, that is sold out.';
      if (left > 0) return 'Sorry, only ' + left + ' left in stock.';
      return 'Sorry, there isn\u2019t enough in stock.';
    }
    if (e.code === 'cart_completed') return 'This cart has already been checked out.';
    if (e.code === 'not_found') return 'Your cart has expired. Please add the items again.';
    return sentence(e.message) || 'Something went wrong. Please try again.';
  }

  function updateCartCount(count) {
    count = Math.max(0, Math.round(Number(count) || 0));
    $$('[data-cart-count]').forEach(function (node) {
      node.textContent = String(count);
      node.setAttribute('data-count', String(count));
      var link = node.closest ? node.closest('a') : null;
      if (link) link.setAttribute('aria-label', 'Cart, ' + count + (count === 1 ? ' item' : ' items'));
    });
  }

  function storedCount() {
    return usesApi() ? (parseInt(storage.get(COUNT_KEY), 10) || 0) : cartQuantity(readCart());
  }

  var cartListeners = [];

  function cartChanged(model) {
    updateCartCount(model.count);
    cartListeners.forEach(function (fn) { fn(model); });
    try {
      document.dispatchEvent(new CustomEvent('aurelio:cart-change', { detail: { cart: model } }));
    } catch (e) { /* CustomEvent unsupported */ }
  }

  /* Product page: variant picker and add to cart. */

  var AVAILABILITY_TEXT = {
    in_stock: 'In stock',
    backorder: 'Available on backorder',
    out_of_stock: 'Sold out'
  };

  function initProduct(form) {
    var variants = [];
    var jsonNode = $('script[data-product-json]');
    try {
      variants = JSON.parse((jsonNode && jsonNode.textContent) || '[]');
    } catch (e) {
      variants = [];
    }
    if (!Array.isArray(variants)) variants = [];
    variants = variants.filter(function (v) { return v && typeof v.sku === 'string'; });

    var optionSelects = $$('select[data-option-index]', form).sort(function (a, b) {
      return Number(a.getAttribute('data-option-index')) - Number(b.getAttribute('data-option-index'));
    });
    var variantSelect = $('select[data-variant-select]', form);
    var variantLabel = variantSelect && variantSelect.id
      ? $('label[for="' + variantSelect.id + '"]', form) : $('.product-variant-label', form);
    var priceBox = $('[data-price]');
    var priceAmount = $('[data-price-amount]');
    var availability = $('.product-availability', form) || $('.product-availability');
    var button = $('[data-add-to-cart]', form);
    var quantityInput = $('#quantity', form) || $('#quantity');
    var message = $('[data-cart-message]', form);
    var titleNode = $('.product-title');
    var productTitle = titleNode ? titleNode.textContent.trim() : document.title;
    var usesOptions = optionSelects.length > 0 && variants.length > 0;

    if (variantSelect && (usesOptions || variants.length === 1)) {
      variantSelect.hidden = true;
      if (variantLabel) variantLabel.hidden = true;
    }

    function bySku(sku) {
      for (var i = 0; i < variants.length; i++) {
        if (variants[i].sku === sku) return variants[i];
      }
      return null;
    }

    function byOptions(values) {
      for (var i = 0; i < variants.length; i++) {
        var options = variants[i].options || [];
        var match = true;
        for (var j = 0; j < values.length; j++) {
          if (options[j] !== values[j]) { match = false; break; }
        }
        if (match) return variants[i];
      }
      return null;
    }

    function selectedValues() {
      return optionSelects.map(function (select) { return select.value; });
    }

    function currentVariant() {
      if (usesOptions) return byOptions(selectedValues());
      if (variantSelect) return bySku(variantSelect.value);
      return variants.length === 1 ? variants[0] : null;
    }

    // Mark option values that are sold out or do not exist with the other current choices.
    function annotateOptions() {
      var values = selectedValues();
      optionSelects.forEach(function (select, index) {
        Array.prototype.forEach.call(select.options, function (option) {
          var probe = values.slice();
          probe[index] = option.value;
          var match = byOptions(probe);
          var suffix = !match ? ' \u2013 unavailable' : (match.available ? '' : ' \u2013 sold out');
          option.textContent = option.value + suffix;
        });
      });
    }

    function setCompare(variant) {
      if (!priceBox) return;
      var compare = $('[data-price-compare]', priceBox);
      var hasCompare = variant && variant.compare_at_price && variant.compare_at_price.formatted;
      if (hasCompare) {
        if (!compare) {
          compare = el('s', { className: 'price-compare', 'data-price-compare': true });
          priceBox.appendChild(document.createTextNode(' '));
          priceBox.appendChild(compare);
        }
        compare.textContent = variant.compare_at_price.formatted;
      } else if (compare) {
        var before = compare.previousSibling;
        if (before && before.nodeType === 3 && !before.textContent.trim()) before.parentNode.removeChild(before);
        compare.parentNode.removeChild(compare);
      }
      priceBox.classList.toggle('price--sale', Boolean(hasCompare));
    }

    function render(variant) {
      if (variant) {
        if (priceAmount && variant.price && variant.price.formatted) {
          priceAmount.textContent = variant.price.formatted;
          $$('.price-from', priceBox || document).forEach(function (node) { node.hidden = true; });
        }
        if (variantSelect) variantSelect.value = variant.sku;
      } else if (variantSelect) {
        variantSelect.selectedIndex = -1;
      }
      setCompare(variant);

      var state = variant ? variant.availability : 'unavailable';
      if (availability) {
        availability.textContent = AVAILABILITY_TEXT[state] || 'Unavailable';
        availability.setAttribute('data-availability', state);
      }
      if (button) {
        var canBuy = Boolean(variant && variant.available);
        button.disabled = !canBuy;
        button.textContent = !variant ? 'Unavailable' : (canBuy ? 'Add to cart' : 'Sold out');
      }
      if (usesOptions) annotateOptions();
    }

    function choose(variant) {
      if (usesOptions && variant) {
        optionSelects.forEach(function (select, i) {
          var value = (variant.options || [])[i];
          if (value !== undefined) select.value = value;
        });
      }
      render(variant);
    }

    function onChange() {
      if (message) message.textContent = '';
      var variant = currentVariant();
      render(variant);
      if (variants.length > 1) replaceParam('variant', variant ? variant.sku : '');
    }

    // Initial variant: ?variant=SKU, else the fallback select's choice (the browser picks
    // the first enabled option), else the first available variant.
    var initial = bySku(searchParams().get('variant') || '') ||
      (variantSelect && bySku(variantSelect.value)) ||
      variants.filter(function (v) { return v.available; })[0] ||
      variants[0] || null;
    if (variants.length) choose(initial);

    optionSelects.forEach(function (select) { select.addEventListener('change', onChange); });
    if (variantSelect) variantSelect.addEventListener('change', onChange);

    var adding = false;

    function addedMessage(capped) {
      if (!message) return;
      message.textContent = '';
      message.appendChild(document.createTextNode(
        capped ? 'Added to cart (limit ' + MAX_QUANTITY + ' per item). ' : 'Added to cart. '));
      message.appendChild(el('a', { href: config.root + 'cart/', text: 'View cart' }));
    }

    form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (adding) return;
      var variant = currentVariant();
      if (!variant || !variant.available) {
        render(variant);
        return;
      }
      var quantity = clampQuantity(quantityInput ? quantityInput.value : 1);
      if (quantityInput) quantityInput.value = String(quantity);
      if (usesApi()) {
        if (!variant.id) {
          if (message) message.textContent = 'This item can\u2019t be added to the cart right now.';
          return;
        }
        // The button keeps its size and label while the request runs: nothing moves.
        adding = true;
        if (button) {
          button.disabled = true;
          button.setAttribute('aria-busy', 'true');
        }
        if (message) message.textContent = '';
        serverBackend.add(variant.id, quantity).then(function () {
          addedMessage(false);
        }, function (e) {
          if (message) message.textContent = politeError(e);
        }).then(function () {
          adding = false;
          if (button) button.removeAttribute('aria-busy');
          render(currentVariant());
        });
        return;
      }
      var url = window.location.pathname +
        (variants.length > 1 ? '?variant=' + encodeURIComponent(variant.sku) : '');
      var result = addToLocalCart({
        sku: variant.sku,
        title: productTitle,
        variant_title: (variant.options && variant.options.length) ? String(variant.title || '') : '',
        price: variant.price ? variant.price.amount : 0,
        price_formatted: variant.price ? variant.price.formatted : '',
        url: url,
        quantity: quantity
      }, quantity);
      addedMessage(result.capped);
    });
  }

  /* Cart page: lines and quantities in both modes; with the API also discount codes,
     destination and shipping, totals with their breakdown, the checkout form and the
     order confirmation (`cart/?order=<cart token>`). Every region that fills in later has
     its space reserved in the CSS, so nothing below it moves. */

  var COUNTRIES = ('AD AE AF AG AI AL AM AO AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ ' +
    'BR BS BT BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE ' +
    'EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HN HR ' +
    'HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR ' +
    'LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG ' +
    'NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE ' +
    'SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA ' +
    'UG US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW').split(' ');

  var countryNamer = null;
  function countryName(code) {
    if (countryNamer === null) {
      try {
        countryNamer = new Intl.DisplayNames([config.locale, 'en'], { type: 'region' });
      } catch (e) { countryNamer = false; }
    }
    try {
      return (countryNamer && countryNamer.of(code)) || code;
    } catch (e) {
      return code;
    }
  }

  function localeCountry() {
    var match = /[-_]([A-Za-z]{2})(?:$|[-_])/.exec(config.locale || '');
    var code = match ? match[1].toUpperCase() : '';
    return COUNTRIES.indexOf(code) >= 0 ? code : '';
  }

  function lineTitle(line) {
    return line.title + (line.variantTitle ? ' (' + line.variantTitle + ')' : '');
  }

  function stockNote(line) {
    if (line.available === null || line.available === undefined || line.available >= line.quantity) return '';
    return line.available > 0 ? 'Only ' + line.available + ' left' : 'Sold out';
  }

  function clear(node) {
    while (node && node.firstChild) node.removeChild(node.firstChild);
  }

  function setBusy(button, busy) {
    if (!button) return;
    button.disabled = busy;
    if (busy) button.setAttribute('aria-busy', 'true');
    else button.removeAttribute('aria-busy');
  }

  function totalsRow(label, value, name, className) {
    var dd = el('dd', { text: value });
    if (name) dd.setAttribute(name, '');
    return el('div', { className: 'cart-totals-row' + (className ? ' ' + className : '') }, [el('dt', { text: label }), dd]);
  }

  function initCart(section) {
    var api = usesApi();
    var backend = api ? serverBackend : localBackend;
    var heading = $('[data-cart-heading]', section) || $('h1', section);
    var body = $('[data-cart-body]', section);
    var table = $('table[data-cart-lines]', section);
    var tbody = table ? (table.tBodies[0] || table.appendChild(document.createElement('tbody'))) : null;
    var empty = $('[data-cart-empty]', section);
    var totals = $('[data-cart-totals]', section);
    var note = $('[data-cart-note]', section);
    var breakdown = $('[data-cart-breakdown]', section);
    var localCheckout = $('[data-checkout]', section);
    var message = $('[data-cart-message]', section);
    var discountForm = api ? $('[data-discount-form]', section) : null;
    var discountMessage = $('[data-discount-message]', section);
    var codeList = $('[data-discount-codes]', section);
    var checkoutForm = api ? $('[data-checkout-form]', section) : null;
    var checkoutMessage = $('[data-checkout-message]', section);
    var placeButton = $('[data-place-order]', section);
    var countrySelect = checkoutForm ? $('[data-country]', checkoutForm) : null;
    var shippingList = $('[data-shipping-list]', section);
    var confirmation = $('[data-order]', section);
    var rows = {};
    var current = null; // the cart as last shown
    var state = '';
    var askedCountry = false;

    if (!note && totals) {
      // Templates from before the API: add the note the local cart shows.
      note = el('p', { className: 'cart-note', 'data-cart-note': true });
      totals.parentNode.insertBefore(note, totals.nextSibling);
    }
    if (note) note.textContent = 'Taxes and shipping calculated at checkout';
    section.setAttribute('data-mode', api ? 'api' : 'local');
    if (discountForm) discountForm.hidden = false;
    if (checkoutForm) checkoutForm.hidden = false;

    function say(node, text) {
      if (!node) return;
      clear(node);
      if (text) node.appendChild(document.createTextNode(text));
    }

    function setState(next) {
      state = next;
      section.setAttribute('data-state', next);
      section.setAttribute('aria-busy', next === 'loading' ? 'true' : 'false');
      var hasCart = next === 'cart';
      if (empty) empty.hidden = next !== 'empty';
      if (body) body.hidden = !hasCart;
      // Older templates have no body wrapper: toggle the parts.
      if (table) table.hidden = !hasCart;
      if (totals) totals.hidden = !hasCart;
      if (note) note.hidden = !hasCart || api;
      if (localCheckout) localCheckout.hidden = !hasCart || api;
      if (breakdown) breakdown.hidden = !hasCart || !api;
      if (confirmation) confirmation.hidden = next !== 'order';
    }

    /* Lines. */

    function indexOf(id) {
      if (!current) return -1;
      for (var i = 0; i < current.lines.length; i++) {
        if (current.lines[i].id === id) return i;
      }
      return -1;
    }

    function changeQuantity(id, value) {
      var n = parseInt(value, 10);
      if (!isFinite(n) || n < 0) {
        if (current) renderLines(current); // put the shown quantity back
        return;
      }
      if (n === 0) {
        removeLine(id);
        return;
      }
      say(message, '');
      backend.setQuantity(id, Math.min(n, MAX_QUANTITY)).then(null, function (e) {
        say(message, politeError(e));
        if (current) renderLines(current);
      });
    }

    function removeLine(id) {
      var index = indexOf(id);
      if (index < 0) return;
      var removed = current.lines[index];
      backend.remove(id).then(function (model) {
        say(message, 'Removed ' + lineTitle(removed) + ' from the cart.');
        // Keep keyboard focus in the table: next line, previous line, or the empty message.
        var lines = (model && model.lines) || [];
        var next = lines[index] || lines[index - 1];
        var target = next && rows[next.id] ? $('button', rows[next.id]) : (empty && $('a', empty));
        if (target) target.focus();
      }, function (e) {
        say(message, politeError(e));
      });
    }

    function buildRow(line, index) {
      var id = 'cart-quantity-' + index;
      var product = line.url
        ? el('a', { className: 'cart-line-title', href: line.url, text: line.title })
        : el('span', { className: 'cart-line-title', text: line.title });
      var input = el('input', {
        id: id, type: 'number', min: 1, max: MAX_QUANTITY, value: line.quantity,
        inputmode: 'numeric', 'data-quantity': true
      });
      input.addEventListener('change', function () { changeQuantity(line.id, input.value); });
      var remove = el('button', {
        type: 'button', className: 'button-link cart-line-remove',
        'aria-label': 'Remove ' + lineTitle(line), text: 'Remove'
      });
      remove.addEventListener('click', function () { removeLine(line.id); });
      return el('tr', { className: 'cart-line', 'data-variant-id': line.id }, [
        el('td', { className: 'cart-line-product' }, [
          product,
          line.variantTitle ? el('span', { className: 'cart-line-variant', text: line.variantTitle }) : null,
          el('span', { className: 'cart-line-price', 'data-line-price': true, text: money.format(line.unitPrice) }),
          el('span', { className: 'cart-line-note', 'data-line-note': true, text: stockNote(line) })
        ]),
        el('td', { className: 'cart-line-quantity' }, [
          el('label', { className: 'visually-hidden', for: id, text: 'Quantity of ' + lineTitle(line) }),
          input
        ]),
        el('td', { className: 'cart-line-total', 'data-line-total': true, text: money.format(line.total) }),
        el('td', { className: 'cart-line-actions' }, [remove])
      ]);
    }

    function renderLines(model) {
      if (!tbody) return;
      // Update rows in place when the set of lines is unchanged so focus stays put.
      var same = Object.keys(rows).length === model.lines.length &&
        model.lines.every(function (line) { return rows[line.id]; });
      if (same) {
        model.lines.forEach(function (line) {
          var row = rows[line.id];
          var input = $('input', row);
          if (input && String(input.value) !== String(line.quantity)) input.value = String(line.quantity);
          say($('[data-line-total]', row), money.format(line.total));
          say($('[data-line-price]', row), money.format(line.unitPrice));
          say($('[data-line-note]', row), stockNote(line));
        });
        return;
      }
      rows = {};
      clear(tbody);
      model.lines.forEach(function (line, index) {
        var row = buildRow(line, index);
        rows[line.id] = row;
        tbody.appendChild(row);
      });
    }

    /* Totals, codes, shipping. */

    function renderTotals(model) {
      if (!totals) return;
      clear(totals);
      var t = model.totals || {};
      totals.appendChild(totalsRow('Subtotal', money.format(t.subtotal), 'data-cart-subtotal'));
      if (model.mode !== 'api') return;
      // Always the same five rows, so the summary keeps its height as amounts change.
      totals.appendChild(totalsRow('Discount', t.discount > 0 ? '\u2212' + money.format(t.discount) : '\u2014', 'data-cart-discount'));
      var shipping = !model.country ? 'Choose a country'
        : !model.shippingOptions.length ? '\u2014'
          : t.shipping === 0 ? 'Free' : money.format(t.shipping);
      totals.appendChild(totalsRow('Shipping', shipping, 'data-cart-shipping'));
      totals.appendChild(totalsRow(t.tax_included ? 'Tax (included)' : 'Tax', money.format(t.tax), 'data-cart-tax'));
      totals.appendChild(totalsRow('Total', money.format(t.total), 'data-cart-total', 'cart-totals-total'));
    }

    function renderBreakdown(model) {
      var list = breakdown ? $('ul', breakdown) : null;
      if (!list) return;
      clear(list);
      model.breakdown.forEach(function (text) { list.appendChild(el('li', { text: String(text) })); });
    }

    function renderCodes(model) {
      if (!codeList) return;
      clear(codeList);
      model.codes.forEach(function (code) {
        var remove = el('button', {
          type: 'button', className: 'button-link', text: 'Remove', 'aria-label': 'Remove code ' + code.code
        });
        remove.addEventListener('click', function () {
          say(discountMessage, '');
          serverBackend.removeCode(code.code).then(function () {
            say(discountMessage, 'Code ' + code.code + ' removed.');
            var input = discountForm && discountForm.elements.code;
            if (input) input.focus();
          }, function (e) { say(discountMessage, politeError(e)); });
        });
        codeList.appendChild(el('li', {
          className: 'discount-code', 'data-code': code.code,
          'data-applied': code.applied ? 'true' : 'false', 'data-reason': code.reason || null
        }, [
          el('span', { className: 'discount-code-name', text: code.code }),
          el('span', {
            className: 'discount-code-state',
            text: code.applied ? '\u2212' + money.format(code.amount) : reasonText(code.reason, code.message)
          }),
          remove
        ]));
      });
    }

    function renderShipping(model) {
      if (!shippingList) return;
      var options = model.shippingOptions;
      var radios = $$('input[name="shipping_rate"]', shippingList);
      var same = radios.length === options.length && radios.length > 0 &&
        options.every(function (o, i) { return radios[i].value === o.id; });
      if (same) {
        // Keep the radios (and focus); update the prices.
        options.forEach(function (o, i) {
          radios[i].checked = o.id === model.shippingRate;
          say($('[data-shipping-price]', radios[i].parentNode), o.amount === 0 ? 'Free' : money.format(o.amount));
        });
        return;
      }
      clear(shippingList);
      if (!model.country) {
        shippingList.appendChild(el('p', { className: 'checkout-hint', text: 'Choose a country to see shipping options.' }));
        return;
      }
      if (!options.length) {
        shippingList.appendChild(el('p', {
          className: 'checkout-hint', text: 'There are no shipping options to ' + countryName(model.country) + '.'
        }));
        return;
      }
      options.forEach(function (o) {
        var radio = el('input', { type: 'radio', name: 'shipping_rate', value: o.id, required: true });
        radio.checked = o.id === model.shippingRate;
        radio.addEventListener('change', function () {
          if (radio.checked) destination({ shipping_rate: o.id });
        });
        shippingList.appendChild(el('label', { className: 'checkout-rate' }, [
          radio,
          el('span', { className: 'checkout-rate-name', text: o.name }),
          el('span', { className: 'checkout-rate-price', 'data-shipping-price': true, text: o.amount === 0 ? 'Free' : money.format(o.amount) })
        ]));
      });
    }

    function destination(fields) {
      say(checkoutMessage, '');
      serverBackend.update(fields).then(null, function (e) { say(checkoutMessage, politeError(e)); });
    }

    function render(model) {
      if (state === 'order') return;
      current = model;
      if (!model || !model.lines.length) {
        setState('empty');
        rows = {};
        clear(tbody);
        return;
      }
      setState('cart');
      renderLines(model);
      renderTotals(model);
      if (model.mode !== 'api') return;
      renderCodes(model);
      renderShipping(model);
      renderBreakdown(model);
      if (countrySelect && model.country && countrySelect.value !== model.country) countrySelect.value = model.country;
      if (checkoutForm && model.email && !checkoutForm.elements.email.value) checkoutForm.elements.email.value = model.email;
      if (!model.country && !askedCountry && countrySelect && countrySelect.value) {
        // Show shipping and tax for the likely destination straight away.
        askedCountry = true;
        destination({ country: countrySelect.value });
      }
    }

    /* Checkout. */

    var pending = null; // { token, key, body } of an attempt that got no answer
    var placing = false;

    function field(name) {
      var node = checkoutForm ? checkoutForm.elements[name] : null;
      return node && typeof node.value === 'string' ? node.value.trim() : '';
    }

    function markInvalid(path) {
      var name = String(path || '').replace(/^shipping_address\./, '');
      var node = checkoutForm && checkoutForm.elements[name];
      if (node && node.length && !node.tagName) node = node[0]; // radio group
      if (!node || !node.setAttribute) return;
      node.setAttribute('aria-invalid', 'true');
      node.focus();
    }

    function clearInvalid() {
      $$('[aria-invalid]', checkoutForm).forEach(function (node) { node.removeAttribute('aria-invalid'); });
    }

    function describeChange(detail, before, after) {
      var match = /^lines\[(\d+)\]/.exec(detail.field || '');
      var line = match && before ? before.lines[Number(match[1])] : null;
      var now = null;
      if (line && after) {
        after.lines.forEach(function (l) { if (l.id === line.id) now = l; });
      }
      switch (detail.code) {
        case 'out_of_stock': {
          var left = now && now.available !== null ? now.available : parseInt((/(\d+) available/.exec(detail.message || '') || [])[1], 10);
          if (!line) break;
          if (left > 0) return lineTitle(line) + ': only ' + left + ' left (you asked for ' + line.quantity + ').';
          return lineTitle(line) + ' is sold out.';
        }
        case 'price_changed':
          if (line && now) {
            return lineTitle(line) + ': the price changed from ' + money.format(line.unitPrice) + ' to ' + money.format(now.unitPrice) + '.';
          }
          break;
        case 'unavailable':
          if (line) return lineTitle(line) + ' is no longer for sale.';
          break;
        case 'total_changed':
          if (before && after && before.totals && after.totals) {
            return 'The total is now ' + money.format(after.totals.total) + ' (it was ' + money.format(before.totals.total) + ').';
          }
          break;
        case 'discount_removed': {
          var parts = String(detail.message || '').split(': ');
          if (parts.length > 1) return 'The code ' + parts[0] + ' no longer applies: ' + sentence(parts.slice(1).join(': ')).toLowerCase();
          break;
        }
        default:
          break;
      }
      return sentence(detail.message);
    }

    function showProblem(e, before, after) {
      clear(checkoutMessage);
      if (!checkoutMessage) return;
      checkoutMessage.setAttribute('data-error', e.code);
      var intro = e.code === 'out_of_stock'
        ? 'Some items are no longer available in the quantity you asked for. Please update your cart, then place your order again.'
        : e.code === 'cart_changed'
          ? 'Your cart changed since you last saw it. Please check it, then place your order again.'
          : politeError(e);
      checkoutMessage.appendChild(el('p', { text: intro }));
      var items = e.details.map(function (d) { return describeChange(d, before, after); }).filter(Boolean);
      if (items.length) {
        checkoutMessage.appendChild(el('ul', { 'data-changes': true }, items.map(function (text) {
          return el('li', { text: text });
        })));
      }
    }

    function sendCheckout(token, key, text, attempt) {
      return request('POST', '/carts/' + token + '/checkout', text, { 'Idempotency-Key': key }).then(null, function (e) {
        // No answer, or the first try is still running: the same attempt again, same key.
        var again = e.status === 0 || e.code === 'request_in_progress' || e.status === 502 || e.status === 503 || e.status === 504;
        if (again && attempt < 3) {
          return delay(400 * Math.pow(2, attempt)).then(function () { return sendCheckout(token, key, text, attempt + 1); });
        }
        throw e;
      });
    }

    function checkoutFailed(e, token) {
      var unknown = e.status === 0 || e.status >= 500 || e.code === 'request_in_progress';
      if (unknown) {
        // The order may exist: keep the key, so trying again returns it instead of a second one.
        say(checkoutMessage, politeError(e) + ' Trying again is safe: your order will not be placed twice.');
        if (checkoutMessage) checkoutMessage.setAttribute('data-error', e.code);
        return null;
      }
      pending = null;
      if (e.code === 'cart_completed') {
        return request('GET', '/carts/' + token + '/order').then(function (json) {
          placed(token, json.order);
        }, function () {
          forgetCart();
          say(checkoutMessage, politeError(e));
        });
      }
      if (e.code === 'out_of_stock' || e.code === 'cart_changed' || e.code === 'discount_not_applicable') {
        var before = current;
        return serverBackend.load().then(function (after) {
          showProblem(e, before, after);
        }, function () {
          showProblem(e, before, null);
        });
      }
      if (e.code === 'not_found') {
        forgetCart();
        render(null);
        say(message, politeError(e));
        return null;
      }
      say(checkoutMessage, politeError(e));
      if (checkoutMessage) checkoutMessage.setAttribute('data-error', e.code);
      if (e.field) markInvalid(e.field);
      return null;
    }

    function placeOrder() {
      if (placing || !checkoutForm) return;
      clearInvalid();
      if (typeof checkoutForm.checkValidity === 'function' && !checkoutForm.checkValidity()) {
        checkoutForm.reportValidity();
        return;
      }
      placing = true;
      setBusy(placeButton, true);
      if (checkoutMessage) checkoutMessage.removeAttribute('data-error');
      say(checkoutMessage, 'Placing your order\u2026');
      var token = storedToken();
      var address = { name: field('name'), line1: field('line1'), city: field('city'), country: field('country') };
      if (field('line2')) address.line2 = field('line2');
      if (field('postal_code')) address.postal_code = field('postal_code');
      if (field('region')) address.region = field('region');
      var checked = $('input[name="shipping_rate"]:checked', checkoutForm);
      // The cart must have the destination the form shows, so the total the shopper saw is
      // the total asked for (`expected_total`); earlier changes finish first.
      enqueue(function () {})
        .then(function () {
          var changes = {};
          if (current && address.country !== current.country) changes.country = address.country;
          if (current && address.region && address.region !== current.region) changes.region = address.region;
          return Object.keys(changes).length ? serverBackend.update(changes) : current;
        })
        .then(function (model) {
          var payload = {
            email: field('email'),
            shipping_address: address,
            payment_provider: 'manual',
            expected_total: model && model.totals ? model.totals.total : undefined
          };
          var rate = (checked && checked.value) || (model && model.shippingRate);
          if (rate) payload.shipping_rate = rate;
          var text = JSON.stringify(payload);
          var key = pending && pending.token === token && pending.body === text ? pending.key : newIdempotencyKey();
          pending = { token: token, key: key, body: text };
          return sendCheckout(token, key, text, 0);
        })
        .then(function (json) {
          pending = null;
          placed(token, json.order);
        }, function (e) {
          return checkoutFailed(e, token);
        })
        .then(function () {
          placing = false;
          setBusy(placeButton, false);
        });
    }

    /* Confirmation. */

    function placed(token, order) {
      forgetCart();
      replaceParam('order', token);
      showOrder(order);
    }

    function showOrder(order) {
      if (!order || !confirmation) return;
      setState('order');
      var details = order.details || {};
      var taxIncluded = Boolean(details.totals && details.totals.tax_included);
      if (heading) heading.textContent = 'Thank you for your order';
      say($('[data-order-number]', confirmation), '#' + order.number);
      say($('[data-order-email]', confirmation), order.email || '');
      var lines = $('[data-order-lines] tbody', confirmation);
      clear(lines);
      (Array.isArray(details.lines) ? details.lines : []).forEach(function (line) {
        var amounts = line.amounts || {};
        lines.appendChild(el('tr', { className: 'order-line' }, [
          el('td', null, [
            el('span', { className: 'cart-line-title', text: String(line.title || line.sku || '') }),
            line.variant_title ? el('span', { className: 'cart-line-variant', text: String(line.variant_title) }) : null
          ]),
          el('td', { text: String(line.quantity) }),
          el('td', { className: 'cart-line-total', text: money.format(number(amounts.subtotal, line.unit_price * line.quantity)) })
        ]));
      });
      var orderTotals = $('[data-order-totals]', confirmation);
      clear(orderTotals);
      orderTotals.appendChild(totalsRow('Subtotal', money.format(order.subtotal)));
      if (order.discount > 0) orderTotals.appendChild(totalsRow('Discount', '\u2212' + money.format(order.discount), 'data-order-discount'));
      orderTotals.appendChild(totalsRow('Shipping', order.shipping === 0 ? 'Free' : money.format(order.shipping)));
      orderTotals.appendChild(totalsRow(taxIncluded ? 'Tax (included)' : 'Tax', money.format(order.tax)));
      orderTotals.appendChild(totalsRow('Total', money.format(order.total), 'data-order-total', 'cart-totals-total'));
      var payment = order.payment || {};
      say($('[data-order-payment]', confirmation), payment.status === 'paid' || order.status === 'paid'
        ? 'Payment received. Thank you!'
        : 'Payment: the shop will contact you with payment details.');
      if (heading) heading.focus();
    }

    /* Wiring. */

    if (countrySelect) {
      var initialCountry = localeCountry();
      countrySelect.appendChild(el('option', { value: '', text: 'Choose a country' }));
      COUNTRIES.map(function (code) { return { code: code, name: countryName(code) }; })
        .sort(function (a, b) { return a.name.localeCompare(b.name); })
        .forEach(function (c) { countrySelect.appendChild(el('option', { value: c.code, text: c.name })); });
      countrySelect.value = initialCountry;
      countrySelect.addEventListener('change', function () {
        if (countrySelect.value) destination({ country: countrySelect.value });
      });
    }
    if (checkoutForm && checkoutForm.elements.region) {
      checkoutForm.elements.region.addEventListener('change', function () {
        // An emptied field clears the region (null), so its tax rate stops applying.
        var region = field('region') || null;
        if (current && region !== (current.region || null)) destination({ region: region });
      });
    }
    if (checkoutForm) {
      checkoutForm.addEventListener('submit', function (event) {
        event.preventDefault();
        placeOrder();
      });
    }
    if (discountForm) {
      discountForm.addEventListener('submit', function (event) {
        event.preventDefault();
        var input = discountForm.elements.code;
        var button = $('button[type="submit"]', discountForm);
        var code = input ? input.value.trim() : '';
        discountMessage.removeAttribute('data-reason');
        if (!code) {
          say(discountMessage, 'Please enter a code.');
          if (input) input.focus();
          return;
        }
        setBusy(button, true);
        say(discountMessage, '');
        serverBackend.applyCode(code).then(function (model) {
          var wanted = code.toUpperCase();
          var status = null;
          model.codes.forEach(function (c) { if (String(c.code).toUpperCase() === wanted) status = c; });
          input.value = '';
          say(discountMessage, status && status.applied
            ? 'Code ' + status.code + ' applied: you save ' + money.format(status.amount) + '.'
            : 'Code ' + wanted + ' added.');
        }, function (e) {
          var reason = e.code === 'discount_not_applicable' && e.details[0] ? e.details[0].code : '';
          if (reason) discountMessage.setAttribute('data-reason', reason);
          say(discountMessage, politeError(e));
        }).then(function () { setBusy(button, false); });
      });
    }
    if (localCheckout && !api) {
      localCheckout.addEventListener('click', function () {
        var proceed = true;
        try {
          proceed = document.dispatchEvent(new CustomEvent('aurelio:checkout', {
            cancelable: true,
            detail: { cart: localModel(readCart()), api: config.api, key: config.key }
          }));
        } catch (e) { /* CustomEvent unsupported */ }
        if (proceed) say(message, 'Checkout is not available yet. Your cart is saved on this device.');
      });
    }

    cartListeners.push(render);

    function load() {
      say(message, '');
      backend.load().then(function (model) {
        // No cart yet, or one already checked out (its token is forgotten): empty.
        if (!model || (model.mode === 'api' && model.status !== 'open')) render(null);
      }, function (e) {
        setState('error');
        if (!message) return;
        say(message, politeError(e) + ' ');
        var retry = el('button', { type: 'button', className: 'button-link', text: 'Try again' });
        retry.addEventListener('click', function () {
          setState('loading');
          load();
        });
        message.appendChild(retry);
      });
    }

    var orderToken = searchParams().get('order') || '';
    if (api && /^[A-Za-z0-9_-]{8,200}$/.test(orderToken)) {
      setState('loading');
      request('GET', '/carts/' + orderToken + '/order').then(function (json) {
        showOrder(json.order);
      }, function (e) {
        replaceParam('order', '');
        say(message, e.status === 404 ? 'We couldn\u2019t find that order.' : politeError(e));
        load();
      });
      return;
    }
    if (!api) {
      render(localModel(readCart()));
      return;
    }
    setState('loading');
    load();
  }

  /* Search page. */

  function fold(text) {
    var s = String(text || '').toLowerCase();
    try {
      s = s.normalize('NFD');
    } catch (e) { /* normalize unsupported */ }
    return s.replace(/[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]/g, '');
  }

  function initSearch(section) {
    var MAX_RESULTS = 60;
    var indexUrl = section.getAttribute('data-index') || '';
    var input = $('[data-search-input]', section);
    var form = input ? input.form : $('form', section);
    var status = $('[data-search-status]', section);
    var list = $('[data-search-results]', section);
    var records = null;
    var loading = null;
    var timer = 0;

    function setStatus(text) {
      if (status) status.textContent = text;
    }

    function load() {
      if (loading) return loading;
      if (!indexUrl || typeof fetch !== 'function') {
        loading = Promise.resolve([]);
        return loading;
      }
      loading = fetch(indexUrl, { credentials: 'same-origin' })
        .then(function (response) {
          if (!response.ok) throw new Error('HTTP ' + response.status);
          return response.json();
        })
        .then(function (json) {
          records = (Array.isArray(json) ? json : []).filter(function (r) {
            return r && typeof r.t === 'string' && isSafeUrl(r.u);
          }).map(function (r) {
            var extra = [r.v, r.y].concat(Array.isArray(r.k) ? r.k : []).filter(Boolean).join(' ');
            return { record: r, title: fold(r.t), rest: fold(extra) };
          });
          return records;
        })
        .catch(function () {
          records = null;
          loading = null;
          setStatus('Search is unavailable right now. Please try again later.');
          return null;
        });
      return loading;
    }

    function query() {
      return input ? input.value.trim() : (searchParams().get('q') || '').trim();
    }

    function run() {
      var q = query();
      if (input) replaceParam('q', q);
      if (!q) {
        setStatus('');
        if (list) list.textContent = '';
        return;
      }
      if (!records) setStatus('Searching\u2026');
      load().then(function (index) {
        if (!index || q !== query()) return;
        render(q, match(index, q));
      });
    }

    function match(index, q) {
      var words = fold(q).split(/\s+/).filter(Boolean);
      var hits = [];
      index.forEach(function (entry, position) {
        var inTitle = 0;
        for (var i = 0; i < words.length; i++) {
          var word = words[i];
          if (entry.title.indexOf(word) >= 0) inTitle++;
          else if (entry.rest.indexOf(word) < 0) return;
        }
        var score = inTitle * 2 + (inTitle === words.length ? 4 : 0) +
          (entry.title.indexOf(words[0]) === 0 ? 1 : 0);
        hits.push({ entry: entry, score: score, position: position });
      });
      hits.sort(function (a, b) { return b.score - a.score || a.position - b.position; });
      return hits;
    }

    function render(q, hits) {
      var total = hits.length;
      var quoted = '\u201c' + q + '\u201d';
      if (!total) setStatus('No results for ' + quoted);
      else if (total > MAX_RESULTS) setStatus('Showing ' + MAX_RESULTS + ' of ' + total + ' results for ' + quoted);
      else setStatus(total + (total === 1 ? ' result' : ' results') + ' for ' + quoted);
      if (!list) return;
      var fragment = document.createDocumentFragment();
      hits.slice(0, MAX_RESULTS).forEach(function (hit) {
        var r = hit.entry.record;
        fragment.appendChild(el('li', null, [
          el('a', { href: r.u }, [
            el('span', { className: 'search-title', text: r.t }),
            r.p ? el('span', { className: 'search-price', text: String(r.p) }) : null
          ])
        ]));
      });
      list.textContent = '';
      list.appendChild(fragment);
    }

    var initial = searchParams().get('q') || '';
    if (input && initial) input.value = initial;

    if (input) {
      input.addEventListener('input', function () {
        clearTimeout(timer);
        timer = setTimeout(run, 120);
      });
      input.addEventListener('focus', load, { once: true });
    }
    if (form) {
      form.addEventListener('submit', function (event) {
        event.preventDefault();
        clearTimeout(timer);
        run();
      });
    }
    if (initial.trim()) run();
  }

  /* Boot. */

  function init() {
    config = readConfig();
    money = makeMoney();
    CART_KEY = 'aurelio.cart.' + config.root;
    TOKEN_KEY = 'aurelio.cart-token.' + config.root;
    COUNT_KEY = 'aurelio.cart-count.' + config.root;
    updateCartCount(storedCount());
    window.addEventListener('storage', function (event) {
      // Another tab changed the cart: the header count follows.
      if (event.key === null || event.key === CART_KEY || event.key === COUNT_KEY) updateCartCount(storedCount());
    });
    var form = $('[data-product-form]');
    if (form) initProduct(form);
    var cart = $('[data-cart]');
    if (cart) initCart(cart);
    var search = $('[data-search]');
    if (search) initSearch(search);
  }

  function safeInit() {
    try {
      init();
    } catch (e) {
      if (window.console && console.error) console.error('storefront:', e);
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', safeInit);
  else safeInit();
})();
