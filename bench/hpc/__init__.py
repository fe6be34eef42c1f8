"""Scaling out on HPC clusters, as the paper did: Slurm array jobs (one task per model), Apptainer images, vLLM with
tensor parallelism inside a node and pipeline parallelism across nodes on a Ray cluster started inside the allocation.

``placement`` decides how many nodes and GPUs a model gets; ``slurm`` writes (and submits) the sbatch scripts and the
manifest; ``multinode`` holds the Ray command lines and the meters that sum energy over nodes; ``merge`` turns the
tasks' parts into one run. Nothing here imports Ray or vLLM at module level.
"""
