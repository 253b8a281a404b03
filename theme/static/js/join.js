// The join page's script: ask the pledge service for a payment form, save the card
// (or SEPA account) with Stripe.js, then ask the service to charge the shares and
// admit; a bank that wants 3-D Secure for the charge gets it here. The service
// never trusts what this script says: it re-reads every outcome from Stripe.
//
// With ?top_up=<link> (from a member's page) the form buys more shares for that
// member: no fee, no new-member minimum, up to the cap.
//
// Its words are messages of the kit's catalogs, carried by the form's
// data-messages (fundraiser/i18n.py), read with `_()` as in pledge.js.
(function () {
  "use strict";

  const form = document.getElementById("join-form");
  if (!form) return;
  const messages = (function () {
    try {
      return JSON.parse(form.dataset.messages || "{}") || {};
    } catch (ignored) {
      return {};
    }
  })();

  function fill(text, values) {
    return String(text).replace(/%(?:\((\w+)\))?([sd%])/g, function (whole, name, kind) {
      if (kind === "%") return "%";
      return name && values && values[name] !== undefined ? String(values[name]) : whole;
    });
  }

  function _(message, values) {
    const text = messages[message];
    return fill(typeof text === "string" ? text : message, values);
  }

  function $(selector, root) {
    return (root || document).querySelector(selector);
  }

  const api = (form.dataset.api || "").replace(/\/$/, "");
  const status = $("#join-status", form);
  const button = $("button[type=submit]", form);
  const sharesInput = $("#shares", form);
  const locale = form.dataset.locale || undefined;
  const exponent = parseInt(form.dataset.exponent || "2", 10);
  const price = parseInt(form.dataset.price, 10);
  const money = new Intl.NumberFormat(locale, {
    style: "currency",
    currency: form.dataset.currency,
    minimumFractionDigits: exponent,
    maximumFractionDigits: exponent,
  });
  const topUp = new URLSearchParams(window.location.search).get("top_up");
  let idempotencyKey = newKey();

  function say(text, isError) {
    status.textContent = text;
    status.classList.toggle("error", Boolean(isError));
  }

  function newKey() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    return String(Date.now()) + "-" + String(Math.random()).slice(2);
  }

  async function postJSON(url, body, headers) {
    const response = await fetch(url, {
      method: "POST",
      headers: Object.assign({ "Content-Type": "application/json" }, headers || {}),
      body: JSON.stringify(body || {}),
      credentials: "omit",
    });
    let data = {};
    try {
      data = await response.json();
    } catch (ignored) {
      data = {};
    }
    return { ok: response.ok, status: response.status, data: data };
  }

  function total() {
    const shown = $("[data-join-total]", form);
    const typed = String(sharesInput.value || "").trim();
    const count = /^[0-9]+$/.test(typed) ? parseInt(typed, 10) : 0;
    shown.textContent = count
      ? _("%(shares)s × %(price)s = %(total)s", {
          shares: count,
          price: money.format(price / Math.pow(10, exponent)),
          total: money.format((count * price) / Math.pow(10, exponent)),
        })
      : "";
  }
  sharesInput.addEventListener("input", total);
  total();

  // -- Stripe's form: a card, or (in euros) an IBAN -------------------------------
  const stripe =
    typeof window.Stripe === "function" && form.dataset.stripeKey ? window.Stripe(form.dataset.stripeKey) : null;
  let card = null;
  let iban = null;
  if (stripe) {
    const elements = stripe.elements();
    card = elements.create("card");
    card.mount("#card-element");
    const ibanMount = $("#iban-element", form);
    form.addEventListener("change", function (event) {
      if (event.target.name !== "method") return;
      const sepa = event.target.value === "sepa_debit";
      $(".for-card", form).hidden = sepa;
      $(".for-sepa", form).hidden = !sepa;
      if (sepa && !iban && ibanMount) {
        try {
          iban = elements.create("iban", { supportedCountries: ["SEPA"] });
          iban.mount(ibanMount);
        } catch (error) {
          say(_("Direct Debit could not load here. Please pay by card."), true);
        }
      }
    });
  } else {
    say(_("The payment form could not load. Please reload the page, or write to us to join by bank transfer."), true);
    button.disabled = true;
  }
  if (form.dataset.state !== "closed") button.disabled = true;

  // -- a member's top-up link -------------------------------------------------------
  async function startTopUp() {
    form.querySelectorAll(".for-join").forEach(function (part) {
      part.hidden = true;
      part.querySelectorAll("[required]").forEach(function (input) {
        input.required = false;
      });
    });
    $("#join-thanks-heading").textContent = _("Thank you");
    const note = $("#top-up-note", form);
    button.disabled = true;
    let answer;
    try {
      answer = await postJSON(api + "/api/join/top-up", { top_up: topUp });
    } catch (error) {
      say(_("We could not reach our server. Check your connection and reload this page."), true);
      return;
    }
    if (!answer.ok) {
      const why = String((answer.data && answer.data.error) || _("this link cannot be used"));
      note.textContent = why.charAt(0).toUpperCase() + why.slice(1).replace(/\.?$/, ".");
      note.hidden = false;
      return;
    }
    const terms = answer.data;
    note.textContent = _(
      "Member No. %(number)s: you hold %(held)s shares, and may buy up to %(most)s more.",
      { number: terms.member_number, held: terms.held, most: terms.most }
    );
    note.hidden = false;
    sharesInput.min = "1";
    sharesInput.max = String(terms.most);
    sharesInput.value = terms.most > 0 ? "1" : "0";
    $("#shares-hint", form).textContent = _("From 1 to %(most)s.", { most: terms.most });
    button.textContent = _("Pay and buy shares");
    total();
    button.disabled = !(stripe && terms.most > 0);
  }
  if (topUp) startTopUp();

  function request() {
    const data = new FormData(form);
    const body = {
      shares: parseInt(String(data.get("shares") || ""), 10),
      method: String(data.get("method") || "card"),
      consent: data.get("consent") !== null,
    };
    if (topUp) {
      body.top_up = topUp;
      return body;
    }
    body.name = String(data.get("name") || "").trim();
    body.email = String(data.get("email") || "").trim();
    body.address = String(data.get("address") || "").trim();
    const display = String(data.get("display_name") || "").trim();
    if (display) body.display_name = display;
    if (data.get("rate")) body.rate = String(data.get("rate"));
    return body;
  }

  function showFieldError(answer) {
    const field = answer.data && answer.data.field;
    const message = (answer.data && answer.data.error) || _("Something went wrong. Please try again.");
    const input = field ? form.querySelector("[name='" + field + "']") : null;
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
    const label = input && input.id ? form.querySelector("label[for='" + input.id + "']") : null;
    const name = label ? label.textContent.trim() : "";
    say(name ? _("%(field)s: %(problem)s", { field: name, problem: message }) : message, true);
  }

  function welcome(state) {
    const thanks = $("#join-thanks");
    const text = $("#join-thanks-text");
    if (state.kind === "top-up") {
      text.textContent = _("Your shares are paid for and added to your holding. Your new certificate will follow by email.");
    } else if (state.member_number) {
      text.textContent = _(
        "You are member No. %(number)s. Your certificate and a welcome email are on their way.",
        { number: state.member_number }
      );
    } else {
      text.textContent = _("Your payment is through. The board will consider your application and email you.");
    }
    form.hidden = true;
    thanks.hidden = false;
    thanks.focus();
  }

  async function confirm(made) {
    return postJSON(api + "/api/join/" + made.pledge_id + "/confirm", { confirm_token: made.confirm_token });
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    form.querySelectorAll("[aria-invalid]").forEach(function (el) {
      el.removeAttribute("aria-invalid");
    });
    button.disabled = true;
    say(_("Recording your request…"));
    try {
      const body = request();
      const created = await postJSON(api + "/api/join", body, { "Idempotency-Key": idempotencyKey });
      if (!created.ok) {
        showFieldError(created);
        return;
      }
      const made = created.data;
      say(_("Checking your payment details with Stripe…"));
      const billing = topUp ? {} : { name: body.name, email: body.email };
      const saved =
        made.method === "sepa_debit"
          ? await stripe.confirmSepaDebitSetup(made.client_secret, {
              payment_method: { sepa_debit: iban, billing_details: billing },
            })
          : await stripe.confirmCardSetup(made.client_secret, {
              payment_method: { card: card, billing_details: billing },
            });
      if (saved.error) {
        say(_("%(problem)s Check the details and try again.", { problem: saved.error.message || _("Your card was not accepted.") }), true);
        idempotencyKey = newKey();
        return;
      }
      say(_("Taking your payment…"));
      let answer = await confirm(made);
      if (answer.ok && answer.data.action_secret) {
        // The bank wants you for this payment (3-D Secure): Stripe asks, then we check again.
        const done = await stripe.confirmCardPayment(answer.data.action_secret);
        if (done.error) {
          say(_("%(problem)s Check the details and try again.", { problem: done.error.message || _("Your card was not accepted.") }), true);
          idempotencyKey = newKey();
          return;
        }
        answer = await confirm(made);
      }
      if (!answer.ok) {
        idempotencyKey = newKey(); // a declined card: the next try is a new payment
        say(
          answer.status === 402
            ? _("%(problem)s Nothing was taken. Try another card.", { problem: answer.data.error || _("Your card was not accepted.") })
            : (answer.data && answer.data.error) || _("Something went wrong. Please try again."),
          true
        );
        return;
      }
      if (answer.data.paid) {
        welcome(answer.data);
      } else {
        say(_("Your payment is being processed. We will email you when it is through."));
      }
    } catch (error) {
      say(_("The network failed. Please try again: you will not be charged twice."), true);
    } finally {
      button.disabled = false;
    }
  });
})();
