/* Aurelio storefront script: variant picker, local cart and product search.
   Dependency-free ES2017; every feature is skipped when its markup is missing. */
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

  /* Cart (localStorage until the cart API exists). */

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
    cartChanged(cart);
  }

  function cartQuantity(cart) {
    return cart.lines.reduce(function (sum, line) { return sum + line.quantity; }, 0);
  }

  function cartSubtotal(cart) {
    // Integer minor units: exact however many lines there are.
    return cart.lines.reduce(function (sum, line) { return sum + line.price * line.quantity; }, 0);
  }

  function addToCart(item, quantity) {
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

  function updateCartCount(cart) {
    var count = cartQuantity(cart);
    $$('[data-cart-count]').forEach(function (node) {
      node.textContent = String(count);
      node.setAttribute('data-count', String(count));
      var link = node.closest ? node.closest('a') : null;
      if (link) link.setAttribute('aria-label', 'Cart, ' + count + (count === 1 ? ' item' : ' items'));
    });
  }

  var cartListeners = [];

  function cartChanged(cart) {
    updateCartCount(cart);
    cartListeners.forEach(function (fn) { fn(cart); });
    try {
      document.dispatchEvent(new CustomEvent('aurelio:cart-change', { detail: { cart: cart } }));
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

    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var variant = currentVariant();
      if (!variant || !variant.available) {
        render(variant);
        return;
      }
      var quantity = clampQuantity(quantityInput ? quantityInput.value : 1);
      if (quantityInput) quantityInput.value = String(quantity);
      var url = window.location.pathname +
        (variants.length > 1 ? '?variant=' + encodeURIComponent(variant.sku) : '');
      var result = addToCart({
        sku: variant.sku,
        title: productTitle,
        variant_title: (variant.options && variant.options.length) ? String(variant.title || '') : '',
        price: variant.price ? variant.price.amount : 0,
        price_formatted: variant.price ? variant.price.formatted : '',
        url: url,
        quantity: quantity
      }, quantity);
      if (message) {
        message.textContent = '';
        message.appendChild(document.createTextNode(
          result.capped ? 'Added to cart (limit ' + MAX_QUANTITY + ' per item). ' : 'Added to cart. '));
        message.appendChild(el('a', { href: config.root + 'cart/', text: 'View cart' }));
      }
    });
  }

  /* Cart page. */

  function initCart(section) {
    var table = $('table[data-cart-lines]', section);
    var tbody = table ? (table.tBodies[0] || table.appendChild(document.createElement('tbody'))) : null;
    var empty = $('[data-cart-empty]', section);
    var totals = $('[data-cart-totals]', section);
    var checkout = $('[data-checkout]', section);
    var message = $('[data-cart-message]', section);
    var note = null;
    var rows = {};

    if (totals) {
      note = el('p', { className: 'cart-note', 'data-cart-note': true, text: 'Taxes and shipping calculated at checkout' });
      note.hidden = true;
      totals.parentNode.insertBefore(note, totals.nextSibling);
    }

    function say(text) {
      if (message) message.textContent = text;
    }

    function setQuantity(sku, value) {
      var cart = readCart();
      if (parseInt(value, 10) === 0) {
        removeLine(sku);
        return;
      }
      cart.lines.forEach(function (line) {
        if (line.sku === sku) line.quantity = clampQuantity(value);
      });
      writeCart(cart);
    }

    function removeLine(sku) {
      var cart = readCart();
      var skus = cart.lines.map(function (line) { return line.sku; });
      var index = skus.indexOf(sku);
      if (index < 0) return;
      var removed = cart.lines.splice(index, 1)[0];
      writeCart(cart);
      say('Removed ' + lineTitle(removed) + ' from the cart.');
      // Keep keyboard focus in the table: next line, previous line, or the empty message.
      var next = cart.lines[index] || cart.lines[index - 1];
      var target = next && rows[next.sku] ? $('button', rows[next.sku]) : (empty && $('a', empty));
      if (target) target.focus();
    }

    function lineTitle(line) {
      return line.title + (line.variant_title ? ' (' + line.variant_title + ')' : '');
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
      input.addEventListener('change', function () { setQuantity(line.sku, input.value); });
      var remove = el('button', {
        type: 'button', className: 'button-link cart-line-remove',
        'aria-label': 'Remove ' + lineTitle(line), text: 'Remove'
      });
      remove.addEventListener('click', function () { removeLine(line.sku); });
      return el('tr', { className: 'cart-line' }, [
        el('td', { className: 'cart-line-product' }, [
          product,
          line.variant_title ? el('span', { className: 'cart-line-variant', text: line.variant_title }) : null,
          line.price_formatted ? el('span', { className: 'cart-line-price', text: line.price_formatted }) : null
        ]),
        el('td', { className: 'cart-line-quantity' }, [
          el('label', { className: 'visually-hidden', for: id, text: 'Quantity of ' + lineTitle(line) }),
          input
        ]),
        el('td', { className: 'cart-line-total', 'data-line-total': true, text: money.format(line.price * line.quantity) }),
        el('td', { className: 'cart-line-actions' }, [remove])
      ]);
    }

    function render(cart) {
      var hasLines = cart.lines.length > 0;
      if (empty) empty.hidden = hasLines;
      if (table) table.hidden = !hasLines;
      if (totals) totals.hidden = !hasLines;
      if (note) note.hidden = !hasLines;
      if (checkout) checkout.hidden = !hasLines;

      if (tbody) {
        // Update rows in place when the set of lines is unchanged so focus stays put.
        var same = Object.keys(rows).length === cart.lines.length &&
          cart.lines.every(function (line) { return rows[line.sku]; });
        if (same) {
          cart.lines.forEach(function (line) {
            var row = rows[line.sku];
            var input = $('input', row);
            if (input && String(input.value) !== String(line.quantity)) input.value = String(line.quantity);
            var total = $('[data-line-total]', row);
            if (total) total.textContent = money.format(line.price * line.quantity);
          });
        } else {
          rows = {};
          while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
          cart.lines.forEach(function (line, index) {
            var row = buildRow(line, index);
            rows[line.sku] = row;
            tbody.appendChild(row);
          });
        }
      }

      if (totals) {
        while (totals.firstChild) totals.removeChild(totals.firstChild);
        if (hasLines) {
          totals.appendChild(el('div', { className: 'cart-totals-row' }, [
            el('dt', { text: 'Subtotal' }),
            el('dd', { 'data-cart-subtotal': true, text: money.format(cartSubtotal(cart)) })
          ]));
        }
      }
    }

    if (checkout) {
      checkout.addEventListener('click', function () {
        var cart = readCart();
        var proceed = true;
        try {
          proceed = document.dispatchEvent(new CustomEvent('aurelio:checkout', {
            cancelable: true,
            detail: { cart: cart, api: config.api, key: config.key }
          }));
        } catch (e) { /* CustomEvent unsupported */ }
        if (proceed) say('Checkout is not available yet. Your cart is saved on this device.');
      });
    }

    cartListeners.push(render);
    render(readCart());
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
    updateCartCount(readCart());
    window.addEventListener('storage', function (event) {
      if (event.key === CART_KEY || event.key === null) cartChanged(readCart());
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
