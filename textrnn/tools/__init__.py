"""The tools behind `bench`, `flops`, `inspect`, `compare` and the plots."""
