"""Decoding: batched greedy / beam search, token sampling, LM generation."""
