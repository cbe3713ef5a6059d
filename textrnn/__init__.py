"""textrnn: recurrent text models from declared pipelines."""

__version__ = "0.1.0"
