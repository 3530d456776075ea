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
            li.setAttribute("role", "option");
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
    if (event.key === "Escape") close();
  });
  list.addEventListener("keydown", function (event) {
    var current = document.activeElement.closest("li");
    if (event.key === "ArrowDown" && current.nextElementSibling) { event.preventDefault(); current.nextElementSibling.querySelector("a").focus(); }
    if (event.key === "ArrowUp") { event.preventDefault(); (current.previousElementSibling ? current.previousElementSibling.querySelector("a") : input).focus(); }
    if (event.key === "Escape") { close(); input.focus(); }
  });
  document.addEventListener("click", function (event) { if (!form.contains(event.target)) close(); });
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
