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
