-- A till's register closed with its Schlussbeleg (decommissioned): when, and the receipt.
ALTER TABLE fiscal_registers ADD COLUMN closed_receipt TEXT;
