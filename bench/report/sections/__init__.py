"""The sections of the report, one module each: what a reader sees, built from results documents into view models.

``facts`` (header facts, warnings, machine and software, meters), ``datasets`` (one section per data set: results,
facts, the accuracy-energy plot), ``components`` (energy by component), ``paper`` (the paper's numbers beside ours),
``proxy`` (runtime as a proxy for energy), ``timeline`` (power over time), ``serving`` (sequential against batched
serving) and ``scaleout`` (placements, nodes and parts of runs scaled out with ``bench slurm``).
``bench.report.page`` assembles them.
"""
