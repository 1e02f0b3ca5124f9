"""Evaluation tools: adapters for peer engines and the benchmark / conformance runners.

Nothing here is imported by ``import constrain``; the peers (llguidance,
xgrammar, outlines-core, from the ``[bench]`` extra) are imported only when an
adapter for them is built.
"""
