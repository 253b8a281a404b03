"""Members after admission, one module per job.

The register (fundraiser.register) owns members, holdings and every entry it
writes; the modules here decide when and why an entry is written, and what a
person or the public may read back.

withdrawal: a member gives back shares by a withdrawal entry; ceased at zero.
cancellation: shares paid by a pledge later refunded are taken off by a cancel
    entry, and money left over without a whole share is listed for refund.
voters: the voter roll, one member one vote, for Loomio or Decidim.
summary: the register as counts and totals by holding band, safe to publish.
privacy: a person's data rights: everything held about them, and erasure
    (with their stored Stripe payloads) where the law allows it.
"""
