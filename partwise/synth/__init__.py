"""Synthetic part-state data: stick-figure videos whose drawn poses carry PaSta, AVA and Kinetics-TPS labels.

``partwise synth OUT --seed S --videos N`` (:mod:`partwise.synth.cli`) or :func:`generate` writes them in the real
annotation formats; :mod:`partwise.synth.generator` documents the world, the timeline and the output layout, and
:mod:`partwise.synth.figures` the figure geometry and drawing.
"""
from partwise.synth.generator import SynthConfig, generate

__all__ = ["SynthConfig", "generate"]
