"""Adversarial examples: attacks, transfer and adversarial training on the digits."""
