"""The co-op's money movements from the ledger, as books a treasurer's tools load.

movements: every movement the ledger knows, as balanced transactions on a
small chart of accounts (campaign.toml's [books]), each traced to the ledger
by ids (pledge, register entry, bank transaction, remainder); and the totals
the ledger itself gives, to check the books against. beancount and table:
the two ways of writing them. No person's name, email or account number is
written: a transaction names ids only.
"""
