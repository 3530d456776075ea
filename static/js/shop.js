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

  // Variant picker: price, stock and SKU follow the chosen variant; the address remembers it.
  var picker = document.querySelector(".variant-picker");
  if (picker) {
    picker.addEventListener("change", function (event) {
      var input = event.target;
      if (input.name !== "variant") return;
      document.getElementById("variant-price").textContent = input.dataset.price;
      var compare = document.getElementById("variant-compare");
      compare.textContent = input.dataset.compare;
      compare.hidden = !input.dataset.compare;
      var stock = document.getElementById("variant-stock");
      stock.textContent = input.dataset.stock;
      stock.className = "stock " + (input.dataset.inStock === "1" ? "ok" : "out");
      document.getElementById("variant-sku").textContent = input.dataset.sku;
      var addButton = document.getElementById("add-to-cart");
      if (addButton) addButton.disabled = input.dataset.inStock !== "1";
      var url = new URL(window.location.href);
      url.searchParams.set("variant", input.value);
      history.replaceState(null, "", url);
    });
  }

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
            status.className = "add-status ok";
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
