"""Evaluators that reproduce the official tools' numbers: AVA, HICO-DET, V-COCO, Kinetics-TPS, PaSta, interactiveness.

Each evaluator runs in three stages -- match, accumulate, summarize -- vectorized with numpy, and returns an
:class:`partwise.eval.report.EvalResult` naming its protocol.
"""
