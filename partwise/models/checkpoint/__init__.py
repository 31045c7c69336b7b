"""Checkpoints: foreign state dicts mapped to partwise modules, and partwise's own model+config format.

Foreign checkpoints are read with ``torch.load(weights_only=True)`` only (no arbitrary unpickling). Their keys are
renamed by an explicit rule table per source (:data:`KEY_RULES`: ordered ``(regex, replacement)`` pairs, first match
wins; a key no rule matches is reported as unexpected). :func:`load_state_dict` then reports missing, unexpected
and shape-mismatched keys and, when ``strict`` (the default), refuses to load anything if there is any.

partwise's format (:func:`save_model` / :func:`load_model`) is one file holding
``{"format": "partwise", "version": 1, "family": ..., "config": <dataclass as dict>, "state_dict": ...}``.

One concern per module, every name importable from here:

- :mod:`~partwise.models.checkpoint.keys`: the key rules per original, :func:`detect_source`, :func:`map_keys`
- :mod:`~partwise.models.checkpoint.load`: the shared loader (:func:`read_checkpoint`, :func:`load_state_dict`,
  :class:`LoadReport`, :func:`load_original`)
- :mod:`~partwise.models.checkpoint.mmaction2_config`: mmaction2 config text, evaluated without executing it
- :mod:`~partwise.models.checkpoint.mmaction2`: mmaction2 AVA detectors (architecture from the weights, options
  from the config text, file name and model table)
- :mod:`~partwise.models.checkpoint.native`: partwise's own format
"""
from partwise.models.checkpoint.keys import KEY_RULES, detect_source, map_keys, state_dict_of
from partwise.models.checkpoint.load import LoadReport, load_original, load_state_dict, parameter_count, read_checkpoint
from partwise.models.checkpoint.mmaction2 import (ASSUMED_SOURCES, MMACTION2_SUMMARY_OPTIONS, MMAction2Options,
                                                  load_mmaction2_detector, mmaction2_detector_config, mmaction2_options,
                                                  mmaction2_options_from_config, mmaction2_options_from_name)
from partwise.models.checkpoint.mmaction2_config import CONFIG_TEXT_LIMIT, parse_config_text
from partwise.models.checkpoint.native import FAMILIES, FORMAT_VERSION, load_model, save_model

__all__ = [
    "ASSUMED_SOURCES", "CONFIG_TEXT_LIMIT", "FAMILIES", "FORMAT_VERSION", "KEY_RULES", "LoadReport",
    "MMACTION2_SUMMARY_OPTIONS", "MMAction2Options", "detect_source", "load_mmaction2_detector", "load_model",
    "load_original", "load_state_dict", "map_keys", "mmaction2_detector_config", "mmaction2_options",
    "mmaction2_options_from_config", "mmaction2_options_from_name", "parameter_count", "parse_config_text",
    "read_checkpoint", "save_model", "state_dict_of",
]
