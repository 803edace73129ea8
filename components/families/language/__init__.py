"""Language models (char-RNN, GPT, BERT) and text classification."""
