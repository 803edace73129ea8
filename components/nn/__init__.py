"""Building blocks several families share."""
