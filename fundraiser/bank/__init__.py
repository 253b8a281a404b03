"""Money by bank: statements reconciled against pledges, refunds paid out by file.

statement: the values a statement file becomes (lines, their ids, the
problems found reading it). matching: references and suggestions, pure.
receipts: an import applied to the ledger in one transaction. payouts:
refunds put into a bank payment file, and confirmed by a later statement.
Reading and writing the banks' file formats is `bankfiles/` (an adapter);
this package sees only the values.
"""
