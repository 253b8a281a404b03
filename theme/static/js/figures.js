// Refreshes the campaign figures baked into the page from campaign.json, which
// `fundraiser site figures` rewrites without rebuilding the site. Without
// JavaScript, or if the file cannot be fetched, the baked-in figures stay.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !window.fetch || !document.querySelector("[data-figure], [data-tier-left]")) {
    return;
  }
  var locale = script.getAttribute("data-locale") || document.documentElement.lang || "en-GB";

  // This script's words in the site's language, in its data-messages (made by the build
  // from the kit's catalogs); English when it carries none. See pledge.js.
  var messages = {};
  try {
    messages = JSON.parse(script.getAttribute("data-messages") || "{}") || {};
  } catch (ignored) { messages = {}; }
  function fill(text, values) {
    return String(text).replace(/%(?:\((\w+)\))?([sd%])/g, function (whole, name, kind) {
      if (kind === "%") { return "%"; }
      return name && values && values[name] !== undefined ? String(values[name]) : whole;
    });
  }
  function _(message, values) {
    var text = messages[message];
    return fill(typeof text === "string" ? text : message, values);
  }
  function ngettext(singular, plural, count, values) {
    var forms = messages[singular];
    var text = count === 1 ? singular : plural;
    if (forms && typeof forms === "object") {
      var kind = window.Intl && Intl.PluralRules ? new Intl.PluralRules(locale).select(count) : "";
      text = forms[kind] || forms.other || text;
    }
    return fill(text, values);
  }

  // Headline figures drop zero pennies ("£250,000"), as the build does; tables keep them.
  function money(amount, currency, exponent, headline) {
    var whole = headline && amount % Math.pow(10, exponent) === 0;
    return new Intl.NumberFormat(locale, {
      style: "currency", currency: currency,
      minimumFractionDigits: whole ? 0 : exponent, maximumFractionDigits: whole ? 0 : exponent
    }).format(amount / Math.pow(10, exponent));
  }
  function number(value) { return new Intl.NumberFormat(locale).format(value); }
  function set(name, text) {
    document.querySelectorAll('[data-figure="' + name + '"]').forEach(function (el) {
      el.textContent = text;
    });
  }

  fetch(script.getAttribute("data-json"), { cache: "no-cache" })
    .then(function (response) { return response.ok ? response.json() : null; })
    .then(function (data) {
      if (!data) { return; }
      set("pledged", money(data.pledged, data.currency, data.exponent, true));
      set("goal", money(data.goal, data.currency, data.exponent, true));
      set("paid", money(data.paid, data.currency, data.exponent));
      set("percent", String(data.percent));
      set("backers", number(data.backers));
      set("days_left", number(data.days_left));
      document.querySelectorAll('[data-figure="progress"]').forEach(function (el) {
        el.value = Math.min(data.percent, 100);
        el.textContent = data.percent + "%";
      });
      var limitedLeft = 0;
      (data.tiers || []).forEach(function (tier) {
        if (tier.limit === null) { return; }
        limitedLeft += tier.left;
        document.querySelectorAll('[data-tier-left="' + tier.id + '"]').forEach(function (el) {
          var inLabel = el.tagName === "SPAN";
          var text = tier.left === 0 ? _("all taken")
            : ngettext("%(left)s of %(limit)s left", "%(left)s of %(limit)s left", tier.left,
                       { left: number(tier.left), limit: number(tier.limit) });
          if (!inLabel && tier.left === 0) {
            text = ngettext("All %(limit)s taken", "All %(limit)s taken", tier.limit,
                            { limit: number(tier.limit) });
          }
          el.textContent = inLabel ? "(" + text + ")" : text;
        });
      });
      set("tiers_left_total", number(limitedLeft));
      Object.keys(data.by_round || {}).forEach(function (id) {
        document.querySelectorAll('[data-round="' + id + '"]').forEach(function (el) {
          el.textContent = money(data.by_round[id], data.currency, data.exponent);
        });
      });
      var stamp = document.querySelector('[data-figure="generated_at"]');
      if (stamp && data.generated_at) {
        var when = new Date(data.generated_at);
        stamp.setAttribute("datetime", data.generated_at);
        stamp.textContent = when.toLocaleString(locale, { dateStyle: "long", timeStyle: "short" });
      }
    })
    .catch(function () { /* offline or opened from disk: keep the built figures */ });
})();
