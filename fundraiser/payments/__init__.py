"""Payments through Stripe: the only package that imports stripe.

client: the SDK pointed at Stripe (or the emulator), errors wrapped once.
intents: start a pledge's Customer and SetupIntent/PaymentIntent; confirm it.
events: apply one Stripe object or event to the ledger, idempotently.
deferred: events that name objects we cannot match yet, kept and retried.
orphans: money taken for a pledge that is over, kept in sight until refunded.
cardforms: close a pending pledge's card form at Stripe before cancelling it.
webhooks: verify a delivery's signature, store the event once, apply it.
sync: reconcile from Stripe's event list and by re-reading intents.
collect: charge saved cards after an all-or-nothing deadline, or release them.
refunds: refund a paid pledge, never more than was paid; card remainders.
env: the client and context a command builds from the environment.
ratelimit: pacing Stripe calls within the account's rate limit.
"""
