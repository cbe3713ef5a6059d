"""textrnn: recurrent text models from declared pipelines.

    import textrnn
    clf = textrnn.load("runs/sentiment")
    clf.predict(["an absolute delight", "a dull mess"])
    mt = textrnn.ensemble(["runs/mt-1", "runs/mt-2"])   # runs of one task and vocabulary, as one model
    run = textrnn.train("pipelines/sentiment.yaml", overrides={"train.epochs": 3}, output="runs/x")
    textrnn.evaluate("runs/sentiment", test="other.tsv")
    textrnn.average("runs/mt", "runs/mt-best2", best=2)   # a run of the mean of 2 kept epochs (train.average_*)

The names below are imported on first use, so `import textrnn` stays light (the CLI starts fast).
"""

from textrnn.errors import UserError

__version__ = "0.1.0"

_API = {
    "load",
    "ensemble",
    "train",
    "evaluate",
    "Run",
    "TaskModel",
    "Classifier",
    "Prediction",
    "LanguageModel",
    "Translator",
    "Chatbot",
    "ChatSession",
    "WrongTask",
}

__all__ = [
    "Chatbot",
    "ChatSession",
    "Classifier",
    "LanguageModel",
    "Prediction",
    "Run",
    "TaskModel",
    "Translator",
    "UserError",
    "WrongTask",
    "__version__",
    "average",
    "ensemble",
    "evaluate",
    "load",
    "train",
]


def __getattr__(name: str):
    if name == "average":
        from textrnn.tools.average import average

        return average
    if name in _API:
        from textrnn import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'textrnn' has no attribute {name!r}")


def __dir__():
    return __all__
