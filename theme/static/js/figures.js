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
          var text = tier.left === 0 ? "all taken"
            : number(tier.left) + " of " + number(tier.limit) + " left";
          if (!inLabel && tier.left === 0) { text = "All " + number(tier.limit) + " taken"; }
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
