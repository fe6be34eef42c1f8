"""A run of a suite on this machine, by responsibility. ``bench.runner`` is the entry point the CLI and Slurm tasks
call; the rooms behind it:

- ``options``: every option of a run, declared once (``RUN_OPTIONS``): the ``bench run`` and ``bench slurm``
  parsers, the ``RunRequest`` of parsed arguments, a container's arguments, each Slurm task's line and the resume
  command are built from it, so a new option is one record there;
- ``request``: what was asked: the ``RunRequest``, as given;
- ``resolve``: the request resolved once into an immutable ``RunPlan`` (``resolve_plan``): ad-hoc or not (files and
  models named on the command line), ``--run-id X`` as the request run X was started with, the suite, data files,
  models with their serving, settings and their hash, and the checks done (machine, inputs); everything after reads
  the plan, ``bench.hpc`` included;
- ``preflight``: the inputs checked before any energy is spent (data sets loaded and split, labels, prompts);
- ``document``: the results document a run writes into (which one, chosen apart from opening it) and ``lock``: the
  run folder held by one process at a time between the two (the holder named in a refusal, a dead holder's lock
  taken over, another host's honoured);
- ``plan``: the pieces the plan is made of and the run's bookkeeping: the suite after overrides, the settings and
  their hash, the data sets and their splits, which cells are left, the results document (new or resumed);
- ``session``: this session's meters (narrowed to an LLM placement's GPUs, or spread over nodes) and idle baselines;
- ``models``: which backend serves a catalog model on the profile (LLM serving settings, placement, locked
  revision), loaded and timed;
- ``cell``: one cell: fit, warm-up, the metered window with the loop rule, per-pass energies, validity;
- ``progress``: what a run prints, in one ``RunReporter`` (header, phases, warnings, the progress bar and the ETA
  from what each model's cells cost);
- ``loop``: a session as named phases (``prepare``, ``idle_baseline``, ``calibration``, ``run_grid``, ``finish``),
  with atomic persistence after every cell and interruption kept resumable.

Only ``session`` and ``cell`` meet meters; only ``models`` and ``cell`` meet backends; nothing here imports torch at
import time.
"""
