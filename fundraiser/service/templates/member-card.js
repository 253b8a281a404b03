// The member's card form: Stripe's card element, confirmCardSetup, then the
// form is posted with the SetupIntent's id; the service reads the outcome from Stripe.
(function () {
  "use strict";
  var form = document.getElementById("member-card-form");
  if (!form || typeof Stripe !== "function") { return; }
  var status = document.getElementById("card-status");
  var button = form.querySelector("button[type=submit]");
  var stripe = Stripe(form.dataset.key);
  var card = stripe.elements().create("card");
  card.mount("#card-element");
  status.textContent = "";
  button.disabled = false;
  form.addEventListener("submit", function (event) {
    if (form.elements.setup_intent.value) { return; }
    event.preventDefault();
    button.disabled = true;
    status.textContent = form.dataset.saving;
    stripe.confirmCardSetup(form.dataset.secret, { payment_method: { card: card } }).then(function (result) {
      if (result.error || !result.setupIntent) {
        status.textContent = form.dataset.failed;
        button.disabled = false;
        return;
      }
      form.elements.setup_intent.value = result.setupIntent.id;
      form.submit();
    });
  });
})();
