"""DataForge: synthetic data from random walks over a graph of typed transformations (see README, datagen).

state.py (typed datapoint, facts) · nodes.py (node kinds) · graph.py (validation, walks, nesting) ·
walk.py (seeded walks, coverage) · judge.py (rubric judge loop) · calls.py (model map, call cache, records) ·
catalog/ (YAML data) · pipeline.py (the catalog graph) · taxonomy.py · seeds.py · output.py (shards,
manifest, export) · run.py (config, in-process and Ray runners) · draw.py (Mermaid, DOT).
"""
