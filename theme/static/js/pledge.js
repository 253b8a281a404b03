// The pledge page's script: ask the pledge service for a card form, confirm the
// card with Stripe.js, ask the service to check with Stripe, then say thank you
// with the backer's private link. The service never trusts what this script
// says happened: it re-reads the outcome from Stripe.
//
// Also drives the fix-your-card form on the service's private-link page.
//
// Its words are messages of the kit's catalogs: the form carries them, translated,
// as JSON in its data-messages (made by the build: fundraiser/i18n.py); `_()` and
// `ngettext()` read them, and Babel's extraction finds them here (babel.cfg).
// English where a form carries none.
(function () {
  "use strict";

  const locale = document.documentElement.lang || undefined;
  const messages = (function () {
    const form = document.querySelector("#pledge-form[data-messages], #fix-form[data-messages]");
    try {
      return (form && JSON.parse(form.dataset.messages)) || {};
    } catch (ignored) {
      return {};
    }
  })();

  // "%(name)s" filled in from values, "%%" a percent sign: as Python and Jinja do it.
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

  function ngettext(singular, plural, count, values) {
    const forms = messages[singular];
    let text = count === 1 ? singular : plural;
    if (forms && typeof forms === "object") {
      const kind = window.Intl && Intl.PluralRules ? new Intl.PluralRules(locale).select(count) : "";
      text = forms[kind] || forms.other || text;
    }
    return fill(text, values);
  }

  function $(selector, root) {
    return (root || document).querySelector(selector);
  }

  function say(line, text, isError) {
    if (!line) return;
    line.textContent = text;
    line.classList.toggle("error", Boolean(isError));
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

  function newKey() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    return String(Date.now()) + "-" + String(Math.random()).slice(2);
  }

  function cardForm(key, mount) {
    if (typeof window.Stripe !== "function" || !key) return null;
    const stripe = window.Stripe(key);
    const card = stripe.elements().create("card");
    card.mount(mount);
    return { stripe: stripe, card: card };
  }

  // -- the pledge form ------------------------------------------------------
  function pledgePage(form) {
    const api = (form.dataset.api || "").replace(/\/$/, "");
    const status = $("#pledge-status", form);
    const button = $("button[type=submit]", form);
    const stripeCard = cardForm(form.dataset.stripeKey, $("#card-element", form));
    // One key per pledge attempt: a resubmit (after a card error, or a lost
    // answer) returns the same pledge instead of making a second one.
    let idempotencyKey = newKey();

    if (!stripeCard) {
      say(
        status,
        _("The card form could not load. Please reload the page, or write to us to pledge by bank transfer."),
        true
      );
      if (button) button.disabled = true;
      return;
    }
    if (form.dataset.state && form.dataset.state !== "open") {
      if (button) button.disabled = true;
    }

    function request() {
      const data = new FormData(form);
      const body = {
        name: String(data.get("name") || "").trim(),
        email: String(data.get("email") || "").trim(),
        address: String(data.get("address") || "").trim(),
        consent: data.get("consent") !== null,
      };
      const display = String(data.get("display_name") || "").trim();
      if (display) body.display_name = display;
      if (form.dataset.round) body.round = form.dataset.round;
      const tier = data.get("tier");
      if (tier === "custom") {
        body.shares = parseInt(String(data.get("shares") || ""), 10);
      } else if (tier) {
        body.tier = String(tier);
      }
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
      // The service names the field by its key ("display_name"); say it as the form does.
      const label = input && input.id ? form.querySelector("label[for='" + input.id + "']") : null;
      const name = label ? label.textContent.trim() : field ? field.replace("_", " ") : "";
      say(status, field && field !== "body" ? _("%(field)s: %(problem)s", { field: name, problem: message }) : message, true);
    }

    function thank(manageUrl) {
      const thanks = $("#pledge-thanks");
      form.hidden = true;
      if (!thanks) {
        say(status, _("Thank you: your pledge is recorded."));
        return;
      }
      if (manageUrl) {
        // The backer's private link: shown whole, so it can be copied and kept.
        const heading = document.createElement("h3");
        heading.textContent = _("Keep this link");
        const why = document.createElement("p");
        why.textContent =
          form.dataset.mode === "all-or-nothing"
            ? _(
                "It is your private page for this pledge: there you can see where it stands, and cancel it until the deadline. It is also in the email we are sending you. Keep it to yourself: anyone who has it can see your pledge."
              )
            : _(
                "It is your private page for this pledge: there you can see where it stands. It is also in the email we are sending you. Keep it to yourself: anyone who has it can see your pledge."
              );
        const box = document.createElement("p");
        box.className = "hash";
        const code = document.createElement("code");
        const a = document.createElement("a");
        a.href = manageUrl;
        a.id = "pledge-manage-link";
        a.textContent = manageUrl;
        code.append(a);
        box.append(code);
        thanks.append(heading, why, box);
      }
      thanks.hidden = false;
      thanks.focus();
    }

    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      form.querySelectorAll("[aria-invalid]").forEach(function (el) {
        el.removeAttribute("aria-invalid");
      });
      if (button) button.disabled = true;
      say(status, _("Recording your pledge…"));
      try {
        const body = request();
        const created = await postJSON(api + "/api/pledges", body, {
          "Idempotency-Key": idempotencyKey,
        });
        if (!created.ok) {
          showFieldError(created);
          return;
        }
        const pledge = created.data;
        say(status, _("Checking your card with Stripe…"));
        const details = {
          payment_method: {
            card: stripeCard.card,
            billing_details: { name: body.name, email: body.email },
          },
        };
        const result =
          pledge.mode === "setup"
            ? await stripeCard.stripe.confirmCardSetup(pledge.client_secret, details)
            : await stripeCard.stripe.confirmCardPayment(pledge.client_secret, details);
        if (result.error) {
          say(
            status,
            _("%(problem)s Check the card details and try again.", {
              problem: result.error.message || _("Your card was not accepted."),
            }),
            true
          );
          return;
        }
        // The pledge's own token (from the answer that made it): without it the
        // service says nothing about a pledge.
        const confirmed = await postJSON(api + "/api/pledges/" + pledge.pledge_id + "/confirm", {
          confirm_token: pledge.confirm_token,
        });
        // The service says whether the backer's part is done; its status
        // names and groups live in fundraiser/pledges.py only.
        if (confirmed.ok && confirmed.data && confirmed.data.secured) {
          idempotencyKey = newKey();
          thank(pledge.manage_url);
        } else if (confirmed.ok) {
          say(status, _("Your card is being checked. We will email you when it is done."));
        } else {
          say(status, _("We could not reach our server. Your card is saved; we will email you."), true);
        }
      } catch (error) {
        say(status, _("The network failed. Please try again: you will not be charged twice."), true);
      } finally {
        if (button) button.disabled = false;
      }
    });
  }

  // -- the running total -------------------------------------------------------
  // What the chosen tier or number of shares comes to, in the campaign's currency
  // and locale: beside the choice, in the summary and on the button. The amount is
  // worked out in minor units (whole numbers); only the display divides.
  function runningTotal(form) {
    const price = parseInt(form.dataset.price, 10);
    const exponent = parseInt(form.dataset.exponent || "2", 10);
    const least = parseInt(form.dataset.minShares, 10);
    const most = parseInt(form.dataset.maxShares, 10);
    const locale = form.dataset.locale || undefined;
    const money = new Intl.NumberFormat(locale, {
      style: "currency",
      currency: form.dataset.currency,
      minimumFractionDigits: exponent,
      maximumFractionDigits: exponent,
    });
    const count = new Intl.NumberFormat(locale);
    const shown = form.querySelectorAll("[data-pledge-total]");
    const prompt = shown.length ? shown[0].textContent : "";
    const button = $("button[type=submit]", form);
    const buttonText = button ? button.textContent : "";
    const custom = $("#shares", form);

    function chosen() {
      const radio = form.querySelector("input[name=tier]:checked");
      if (!radio) return { shares: null, tier: "" };
      if (radio.value === "custom") {
        const typed = String(custom ? custom.value : "").trim();
        const shares = /^[0-9]+$/.test(typed) ? parseInt(typed, 10) : NaN;
        const ok = shares >= least && shares <= most;
        return { shares: ok ? shares : null, tier: "", invalid: typed !== "" && !ok };
      }
      const label = form.querySelector("label[for='" + radio.id + "'] strong");
      return { shares: parseInt(radio.dataset.shares, 10), tier: label ? label.textContent : "" };
    }

    function update() {
      const choice = chosen();
      let text = prompt;
      let total = "";
      if (choice.shares) {
        total = money.format((choice.shares * price) / Math.pow(10, exponent));
        const values = {
          tier: choice.tier,
          shares: count.format(choice.shares),
          price: money.format(price / Math.pow(10, exponent)),
          total: total,
        };
        text = choice.tier
          ? ngettext(
              "%(tier)s: %(shares)s share \u00d7 %(price)s = %(total)s",
              "%(tier)s: %(shares)s shares \u00d7 %(price)s = %(total)s",
              choice.shares,
              values
            )
          : ngettext(
              "%(shares)s share \u00d7 %(price)s = %(total)s",
              "%(shares)s shares \u00d7 %(price)s = %(total)s",
              choice.shares,
              values
            );
      } else if (choice.invalid) {
        text = _("Enter a whole number of shares from %(least)s to %(most)s.", {
          least: count.format(least),
          most: count.format(most),
        });
      }
      shown.forEach(function (el) {
        el.textContent = text;
      });
      if (button) button.textContent = total ? buttonText + " " + total : buttonText;
    }

    if (custom) {
      // Typing a number means "another number of shares".
      custom.addEventListener("input", function () {
        const other = $("#tier-custom", form);
        if (other && !other.checked && custom.value !== "") other.checked = true;
      });
    }
    form.addEventListener("change", update);
    form.addEventListener("input", update);
    update();
  }

  // -- the fix-your-card form (on the private-link page) ---------------------
  async function fixPage(form) {
    const api = (form.dataset.api || "").replace(/\/$/, "");
    const token = form.dataset.token;
    const status = $("#pledge-status-line", form);
    const button = $("button[type=submit]", form);
    const base = api + "/api/manage/" + encodeURIComponent(token);
    // The button stays disabled (as the page is sent) until the card form is ready.
    const help =
      " " +
      (form.dataset.contact
        ? _("If it still does not work, write to us at %(email)s and we will help you complete your payment.", {
            email: form.dataset.contact,
          })
        : _("If it still does not work, reply to our email and we will help you complete your payment."));
    let opened;
    try {
      opened = await postJSON(base + "/fix");
    } catch (error) {
      say(status, _("We could not reach our server. Check your connection and reload this page.") + help, true);
      return;
    }
    if (!opened.ok) {
      // The service's words ("this pledge has no payment to fix"), as a sentence.
      const why = String((opened.data && opened.data.error) || _("this payment cannot be completed now"));
      say(status, why.charAt(0).toUpperCase() + why.slice(1).replace(/\.?$/, ".") + help, true);
      return;
    }
    const stripeCard = cardForm(opened.data.publishable_key, $("#card-element", form));
    if (!stripeCard) {
      say(status, _("The card form could not load. Reload this page to try again.") + help, true);
      return;
    }
    say(status, "");
    if (button) button.disabled = false;
    let saved = false;
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      if (saved) return;
      if (button) button.disabled = true;
      try {
        const result = await stripeCard.stripe.confirmCardSetup(opened.data.client_secret, {
          payment_method: { card: stripeCard.card },
        });
        if (result.error) {
          say(status, result.error.message || _("Your card was not accepted."), true);
          return;
        }
        const done = await postJSON(base + "/fix/confirm", {
          setup_intent: result.setupIntent.id,
        });
        saved = Boolean(done.ok && done.data && done.data.secured);
        say(
          status,
          saved
            ? _("Thank you: your card is saved and will be charged shortly.")
            : _("We could not confirm your card yet. Please try again."),
          !saved
        );
      } catch (error) {
        say(status, _("The network failed. Please try again: you will not be charged twice."), true);
      } finally {
        // Once the card is saved there is nothing left to submit.
        if (button) button.disabled = saved;
      }
    });
  }

  function start() {
    const form = document.getElementById("pledge-form");
    if (form) runningTotal(form);
    if (form) pledgePage(form);
    const fix = document.getElementById("fix-form");
    if (fix) fixPage(fix);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
