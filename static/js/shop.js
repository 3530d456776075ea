/* Small enhancements; every page works without them. */
(function () {
  "use strict";

  // Filter and sort forms apply as soon as something changes.
  document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
    form.addEventListener("change", function (event) {
      if (event.target.type === "number") return; // prices apply on Enter or the button
      form.requestSubmit ? form.requestSubmit() : form.submit();
    });
  });

  // Product gallery: thumbnails swap the main picture.
  var main = document.getElementById("gallery-main");
  document.querySelectorAll(".thumb").forEach(function (thumb) {
    thumb.addEventListener("click", function (event) {
      if (!main) return;
      event.preventDefault();
      main.src = thumb.dataset.large;
      main.alt = thumb.dataset.alt;
      document.querySelectorAll(".thumb").forEach(function (t) { t.removeAttribute("aria-current"); });
      thumb.setAttribute("aria-current", "true");
    });
  });

  // Add to cart without leaving the page.
  document.querySelectorAll("form[data-add-to-cart]").forEach(function (cartForm) {
    cartForm.addEventListener("submit", function (event) {
      if (event.submitter && event.submitter.getAttribute("formmethod") === "get") return;
      event.preventDefault();
      var status = cartForm.querySelector(".add-status");
      var data = new FormData(cartForm);
      fetch(cartForm.action, {
        method: "POST",
        body: data,
        headers: { Accept: "application/json", "X-CSRFToken": data.get("csrfmiddlewaretoken") || "" },
        credentials: "same-origin"
      })
        .then(function (r) { return r.json(); })
        .then(function (body) {
          if (body.ok) {
            document.querySelectorAll("[data-cart-count]").forEach(function (el) { el.textContent = body.count; });
            status.className = "add-status " + (body.level === "warning" ? "warning" : "ok");
            status.textContent = body.message;
          } else {
            status.className = "add-status out";
            status.textContent = body.error ? body.error.message : "That did not work. Please try again.";
          }
        })
        .catch(function () { cartForm.submit(); });
    });
  });

  // Search suggestions.
  var form = document.querySelector(".search-form");
  if (!form) return;
  var input = form.querySelector("input[name=q]");
  var list = document.getElementById("search-suggestions");
  var timer = null;
  var latest = 0;
  function close() { list.hidden = true; input.setAttribute("aria-expanded", "false"); }
  input.addEventListener("input", function () {
    clearTimeout(timer);
    var text = input.value.trim();
    if (text.length < 2) { close(); return; }
    timer = setTimeout(function () {
      var ticket = ++latest;
      fetch(form.dataset.suggestUrl + "?q=" + encodeURIComponent(text), { headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : { suggestions: [] }; })
        .then(function (data) {
          if (ticket !== latest) return;
          list.innerHTML = "";
          data.suggestions.forEach(function (s) {
            var li = document.createElement("li");
            var a = document.createElement("a");
            a.href = s.url;
            a.textContent = s.title;
            if (s.kind === "category") { var k = document.createElement("span"); k.className = "kind"; k.textContent = "Category"; a.appendChild(k); }
            li.appendChild(a);
            list.appendChild(li);
          });
          list.hidden = data.suggestions.length === 0;
          input.setAttribute("aria-expanded", String(!list.hidden));
        })
        .catch(close);
    }, 150);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "ArrowDown" && !list.hidden) { event.preventDefault(); list.querySelector("a").focus(); }
    if (event.key === "Escape" && !list.hidden) { event.preventDefault(); close(); } // closes, keeps the words
  });
  list.addEventListener("keydown", function (event) {
    var current = document.activeElement.closest("li");
    if (event.key === "ArrowDown" && current.nextElementSibling) { event.preventDefault(); current.nextElementSibling.querySelector("a").focus(); }
    if (event.key === "ArrowUp") { event.preventDefault(); (current.previousElementSibling ? current.previousElementSibling.querySelector("a") : input).focus(); }
    if (event.key === "Escape") { close(); input.focus(); }
  });
  document.addEventListener("click", function (event) { if (!form.contains(event.target)) close(); });
})();

/* Keyboard use of the forms that apply themselves (filters, sort): a select changed with the arrow keys applies on
   Enter or when the focus leaves it, not at the first arrow press; after a form applied itself from the keyboard,
   the new page puts the focus back on the control that was used, so Tab order is not lost at every reload. */
(function () {
  "use strict";
  var KEY = "shop:focus-after-submit";
  var byKeyboard = false;
  document.addEventListener("keydown", function () { byKeyboard = true; }, true);
  document.addEventListener("pointerdown", function () { byKeyboard = false; }, true);

  function remember(control) {
    if (!byKeyboard || !control || !control.name) return;
    try {
      sessionStorage.setItem(KEY, JSON.stringify({ path: location.pathname, name: control.name, value: control.type === "checkbox" ? control.value : "" }));
    } catch (e) { /* storage off: focus simply starts at the top */ }
  }

  document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
    var pending = null;
    form.addEventListener("change", function (event) {
      if (event.target.tagName === "SELECT" && byKeyboard) {
        event.stopPropagation(); // wait for Enter or leaving the select
        pending = event.target;
      }
    }, true);
    form.addEventListener("submit", function () {
      if (form.contains(document.activeElement)) remember(document.activeElement);
    });
    function applyPending() {
      if (!pending) return;
      remember(pending);
      pending = null;
      form.requestSubmit ? form.requestSubmit() : form.submit();
    }
    form.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && pending && event.target === pending) { event.preventDefault(); applyPending(); }
    });
    form.addEventListener("focusout", function (event) { if (event.target === pending) applyPending(); });
  });

  var saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(KEY) || "null"); sessionStorage.removeItem(KEY); } catch (e) { saved = null; }
  if (saved && saved.path === location.pathname) {
    var candidates = document.querySelectorAll("form[data-autosubmit] [name]");
    for (var i = 0; i < candidates.length; i++) {
      var c = candidates[i];
      if (c.name === saved.name && c.type !== "hidden" && (!saved.value || c.value === saved.value)) { c.focus(); break; }
    }
  }
})();

/* Variant picker (issue 15): one radio group per option (colour swatches, sizes). A choice picks the variant it
   makes (in stock first, then the one keeping most of the other choices), and the page follows it: the other
   groups' availability, price, stock, SKU, the address (?variant=), the add-to-cart button and the pictures of
   its colour. Without this script the form's "Show this choice" asks the server for the same. */
(function () {
  "use strict";
  var source = document.getElementById("variant-data");
  var picker = document.querySelector(".variant-picker");
  if (!source || !picker) return;
  var data = JSON.parse(source.textContent);
  var variants = data.variants;
  var hidden = document.getElementById("variant-id");

  function byId(id) { return variants.filter(function (v) { return String(v.id) === String(id); })[0]; }
  function fieldset(index) { return picker.querySelector('[data-option="' + index + '"]'); }
  function samePrefix(a, b, n) { for (var i = 0; i < n; i++) { if (a[i] !== b[i]) return false; } return true; }

  function rank(v, wanted) {
    var score = [v.inStock ? 1 : 0];
    for (var i = 0; i < wanted.length; i++) score.push(v.values[i] === wanted[i] ? 1 : 0);
    return score;
  }
  function better(a, b) {
    for (var i = 0; i < a.length; i++) { if (a[i] !== b[i]) return a[i] > b[i]; }
    return false;
  }

  function showPictures(colour) {
    var items = Array.prototype.slice.call(document.querySelectorAll(".thumbs li"));
    if (!items.length) return;
    var lower = (colour || "").toLowerCase();
    var own = items.filter(function (li) { return lower && li.dataset.colour.toLowerCase() === lower; });
    var general = items.filter(function (li) { return !li.dataset.colour; });
    var shown = own.concat(general);
    if (!shown.length) shown = items;
    items.forEach(function (li) { li.hidden = shown.indexOf(li) < 0; });
    document.querySelector(".thumbs").hidden = shown.length < 2;
    var first = shown[0].querySelector(".thumb");
    var main = document.getElementById("gallery-main");
    if (main && main.getAttribute("src") !== first.dataset.large) {
      main.src = first.dataset.large;
      main.alt = first.dataset.alt;
    }
    document.querySelectorAll(".thumb").forEach(function (t) { t.removeAttribute("aria-current"); });
    first.setAttribute("aria-current", "true");
  }

  function show(variant) {
    hidden.value = variant.id;
    data.groups.forEach(function (group, index) {
      var set = fieldset(index);
      if (!set) return; // one value only: shown as text
      set.querySelector(".option-chosen").textContent = variant.values[index];
      set.querySelectorAll("input").forEach(function (input) {
        var matching = variants.filter(function (v) {
          return samePrefix(v.values, variant.values, index) && v.values[index] === input.value;
        });
        var exists = matching.length > 0;
        var inStock = matching.some(function (v) { return v.inStock; });
        var selected = input.value === variant.values[index];
        input.checked = selected;
        input.disabled = !selected && !group.colour && !(exists && inStock);
        var label = input.closest(".option");
        label.dataset.state = !exists ? "missing" : inStock ? "available" : "sold-out";
        label.querySelector(".option-note").textContent = !exists ? "(not available)" : inStock ? "" : "(sold out)";
      });
    });
    document.getElementById("variant-price").textContent = variant.price;
    var compare = document.getElementById("variant-compare");
    compare.textContent = variant.compare;
    compare.hidden = !variant.compare;
    var stock = document.getElementById("variant-stock");
    stock.textContent = variant.stock;
    stock.className = "stock " + (variant.inStock ? "ok" : "out");
    document.getElementById("variant-sku").textContent = variant.sku;
    var addButton = document.getElementById("add-to-cart");
    if (addButton) addButton.disabled = !variant.inStock;
    var status = picker.querySelector(".add-status");
    if (status) { status.textContent = ""; status.className = "add-status"; }
    var url = new URL(window.location.href);
    url.searchParams.set("variant", variant.id);
    history.replaceState(null, "", url);
    showPictures(variant.colour);
  }

  picker.addEventListener("change", function (event) {
    var set = event.target.closest("[data-option]");
    if (!set || event.target.type !== "radio") return;
    var index = Number(set.dataset.option);
    var current = byId(hidden.value) || variants[0];
    var wanted = current.values.slice();
    wanted[index] = event.target.value;
    var best = null;
    variants.forEach(function (v) {
      if (v.values[index] !== wanted[index]) return;
      if (!best || better(rank(v, wanted), rank(best, wanted))) best = v;
    });
    if (best) show(best);
  });
})();

/* Category page and category bar (issue 15): every page works without this. */
(function () {
  "use strict";

  // Filter panel: always open as a sidebar on wide screens, a closed "Filters (N)" disclosure on phones.
  var panel = document.querySelector("[data-filters-panel]");
  if (panel) {
    var wide = window.matchMedia("(min-width: 861px)");
    var sync = function () { panel.open = wide.matches; };
    sync();
    wide.addEventListener("change", sync);
  }

  // Category bar: the categories that do not fit on the line move under "More"; Escape closes the menu.
  var bar = document.querySelector(".category-bar");
  if (!bar) return;
  var menu = bar.querySelector("[data-category-menu]");
  var summary = menu.querySelector("summary");
  var inline = Array.prototype.slice.call(bar.querySelectorAll("[data-category-list] > li"));
  var listed = Array.prototype.slice.call(menu.querySelectorAll(".category-menu-list > li"));
  var phone = window.matchMedia("(max-width: 700px)");

  function fit() {
    bar.classList.add("is-measured");
    inline.forEach(function (li) { li.hidden = false; });
    listed.forEach(function (li) { li.hidden = false; });
    if (phone.matches) { bar.classList.remove("has-overflow"); return; }
    bar.classList.add("has-overflow"); // room for "More" while measuring
    var right = bar.querySelector("[data-category-list]").getBoundingClientRect().right;
    var overflow = false;
    inline.forEach(function (li, i) { // from the first that does not fit, all go under More, in their order
      overflow = overflow || li.getBoundingClientRect().right > right + 1;
      li.hidden = overflow;
      listed[i].hidden = !overflow;
    });
    bar.classList.toggle("has-overflow", overflow);
    if (!overflow) listed.forEach(function (li) { li.hidden = false; });
  }
  function expanded() { summary.setAttribute("aria-expanded", String(menu.open)); }

  fit();
  expanded();
  window.addEventListener("resize", fit);
  menu.addEventListener("toggle", expanded);
  menu.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && menu.open) { menu.open = false; summary.focus(); }
  });
  document.addEventListener("click", function (event) {
    if (menu.open && !phone.matches && !menu.contains(event.target)) menu.open = false;
  });
})();

/* Checkout details (issue 15): the summary follows the delivery method chosen (figures the server rendered on each
   choice), the billing fields show only when the billing address is not the delivery address, and typing a new
   address chooses "A new address". Without JS every field shows and the review page has the right figures. */
(function () {
  "use strict";
  var form = document.querySelector("[data-checkout-form]");
  if (!form) return;

  function setAll(selector, text) {
    document.querySelectorAll(selector).forEach(function (el) { el.textContent = text; });
  }
  function showMethod(radio) {
    if (!radio || !radio.dataset.total) return;
    setAll("[data-summary-shipping]", radio.dataset.shipping);
    setAll("[data-summary-method]", "(" + radio.dataset.method + ")");
    setAll("[data-summary-tax]", radio.dataset.tax);
    setAll("[data-summary-total]", radio.dataset.total);
  }
  form.querySelectorAll("input[name=shipping_method]").forEach(function (radio) {
    radio.addEventListener("change", function () { if (radio.checked) showMethod(radio); });
  });
  showMethod(form.querySelector("input[name=shipping_method]:checked"));

  var same = form.querySelector("input[name=billing_same]");
  var billing = form.querySelector("[data-billing-fields]");
  if (same && billing) {
    var sync = function () { billing.hidden = same.checked; };
    same.setAttribute("aria-controls", billing.id);
    same.addEventListener("change", function () {
      sync();
      if (!same.checked) { var first = billing.querySelector("input"); if (first) first.focus(); }
    });
    sync();
  }

  // A field put right no longer shows its error; the server checks it again on submit.
  form.addEventListener("input", function (event) {
    var field = event.target.closest(".field.has-error");
    if (!field || !event.target.value.trim()) return;
    field.classList.remove("has-error");
    field.querySelectorAll(".field-errors").forEach(function (list) { list.hidden = true; });
  });

  // With saved addresses to choose from, the new address's fields show only for "A new address".
  var choices = form.querySelectorAll("input[name=saved_address][type=radio]");
  var address = form.querySelector("[data-new-address]");
  if (choices.length && address) {
    var showAddress = function () {
      var chosen = form.querySelector("input[name=saved_address]:checked");
      address.hidden = !chosen || chosen.value !== "new";
    };
    choices.forEach(function (radio) {
      radio.setAttribute("aria-controls", address.id);
      radio.addEventListener("change", showAddress);
    });
    showAddress();
  }
})();

// ---- Recommendation slots: the cart's one-click "Add" (form[data-recs-add]) goes through the same JSON add-to-cart
// as the product page; on the cart page the cart is then shown again in place (its lines, totals and the slot
// change), and the result is announced. Without JavaScript the form posts and the page comes back with a message.
(function () {
  "use strict";
  if (!document.querySelector("form[data-recs-add]")) return;
  var live = document.createElement("p");
  live.className = "visually-hidden";
  live.setAttribute("role", "status");
  document.body.appendChild(live);

  function showCart(message, level) {
    return fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("main");
        var main = document.getElementById("main");
        if (!fresh || !main) throw new Error("no main");
        main.innerHTML = fresh.innerHTML;
        var note = document.createElement("p");
        note.className = "message message-" + (level === "warning" ? "warning" : "success");
        note.textContent = message;
        main.insertBefore(note, main.firstChild);
        main.focus();
        live.textContent = message;
      });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-recs-add]");
    if (!form) return;
    event.preventDefault();
    var status = form.querySelector(".add-status");
    var button = form.querySelector("button");
    var data = new FormData(form);
    if (button) button.disabled = true;
    fetch(form.action, {
      method: "POST",
      body: data,
      headers: { Accept: "application/json", "X-CSRFToken": data.get("csrfmiddlewaretoken") || "" },
      credentials: "same-origin"
    })
      .then(function (r) { return r.json(); })
      .then(function (body) {
        if (!body.ok) {
          if (button) button.disabled = false;
          status.className = "add-status out";
          status.textContent = body.error ? body.error.message : "That did not work. Please try again.";
          return;
        }
        document.querySelectorAll("[data-cart-count]").forEach(function (el) { el.textContent = body.count; });
        if (document.querySelector(".cart, .panel.empty") && document.body.contains(form)) {
          return showCart(body.message, body.level).catch(function () { window.location.reload(); });
        }
        status.className = "add-status " + (body.level === "warning" ? "warning" : "ok");
        status.textContent = body.message;
      })
      .catch(function () { form.submit(); });
  });
})();
