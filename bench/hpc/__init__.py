"""Scaling out on HPC clusters, as the paper did: Slurm array jobs (one task per model), Apptainer images, vLLM with
tensor parallelism inside a node and pipeline parallelism across nodes on a Ray cluster started inside the allocation.

``slurm`` writes (and submits) the sbatch scripts and the manifest, planning each task with the run's own resolution
(``bench.run.resolve.resolve_plan``) and its options' declaration (``bench.run.options``), and placing each model
with ``bench.catalog.placement``; ``multinode`` holds the Ray command lines of a multi-node task (the meters that sum
energy over nodes are ``bench.meters.multinode``); ``merge`` turns the tasks' parts into one run. Nothing here imports
Ray or vLLM at module level, and nothing in ``bench.run`` imports this package.
"""
