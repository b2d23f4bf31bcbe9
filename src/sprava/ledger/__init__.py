"""The custody ledger: RFC 6962 Merkle tree, signed C2SP checkpoints, proofs."""
